package org.dsabi;

/** A device is missing or failed (status band -100..-199, e.g. {@link Status#NO_DEVICE}). */
public class DeviceException extends DsException {
    private static final long serialVersionUID = 1L;

    public DeviceException(int code, String message) {
        super(code, message);
    }
}
