package org.dsabi;

/**
 * A dsabi call failed. {@link #getCode()} is the {@code ds_status_t} (see {@link Status}) and the
 * message is the library's detailed text for the call (function, argument or config key path,
 * value, what was expected). Subclasses group the configuration and device bands.
 */
public class DsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int code;
    private final String libraryMessage;

    public DsException(int code, String message) {
        super(message + " [" + Status.describe(code) + ", " + code + "]");
        this.code = code;
        this.libraryMessage = message;
    }

    /** The status code; any negative value is an error, also codes newer than these bindings. */
    public int getCode() {
        return code;
    }

    /** The library's message alone, without the status suffix of {@link #getMessage()}. */
    public String getLibraryMessage() {
        return libraryMessage;
    }

    /** Built by the generated code for a failed call: the subclass by band, else DsException. */
    static DsException of(int code, byte[] utf8Message) {
        String message = Utf8.decode(utf8Message);
        if (code <= -400 && code > -500) {
            return new ConfigException(code, message);
        }
        if (code <= -100 && code > -200) {
            return new DeviceException(code, message);
        }
        return new DsException(code, message);
    }
}
