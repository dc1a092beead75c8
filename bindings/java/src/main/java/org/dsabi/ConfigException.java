package org.dsabi;

/** The DeepSpeed configuration is invalid (status band -400..-499, e.g. {@link Status#CONFIG_VALUE}). */
public class ConfigException extends DsException {
    private static final long serialVersionUID = 1L;

    public ConfigException(int code, String message) {
        super(code, message);
    }
}
