package org.dsabi;

/**
 * The status codes of dsabi.h ({@code enum ds_status_code}): 0 is success, positive values are
 * non-error outcomes, negative values are errors in stable bands (-1..-99 general, -100.. device,
 * -200.. communication, -300.. I/O, -400.. configuration). New codes may be added.
 */
public final class Status {
    public static final int OK = ds_status_code.DS_OK;
    public static final int INPROGRESS = ds_status_code.DS_INPROGRESS;
    public static final int ABORTED = ds_status_code.DS_ABORTED;
    public static final int INVALID_ARG = ds_status_code.DS_ERR_INVALID_ARG;
    public static final int NOMEM = ds_status_code.DS_ERR_NOMEM;
    public static final int INVALID_HANDLE = ds_status_code.DS_ERR_INVALID_HANDLE;
    public static final int BUFFER_TOO_SMALL = ds_status_code.DS_ERR_BUFFER_TOO_SMALL;
    public static final int UNSUPPORTED = ds_status_code.DS_ERR_UNSUPPORTED;
    public static final int VERSION = ds_status_code.DS_ERR_VERSION;
    public static final int STATE = ds_status_code.DS_ERR_STATE;
    public static final int NOT_FOUND = ds_status_code.DS_ERR_NOT_FOUND;
    public static final int TYPE = ds_status_code.DS_ERR_TYPE;
    public static final int INTERNAL = ds_status_code.DS_ERR_INTERNAL;
    public static final int UNKNOWN = ds_status_code.DS_ERR_UNKNOWN;
    public static final int DEVICE = ds_status_code.DS_ERR_DEVICE;
    public static final int NO_DEVICE = ds_status_code.DS_ERR_NO_DEVICE;
    public static final int DEVICE_NOMEM = ds_status_code.DS_ERR_DEVICE_NOMEM;
    public static final int DEVICE_MISMATCH = ds_status_code.DS_ERR_DEVICE_MISMATCH;
    public static final int COMM = ds_status_code.DS_ERR_COMM;
    public static final int COMM_TIMEOUT = ds_status_code.DS_ERR_COMM_TIMEOUT;
    public static final int COMM_PEER = ds_status_code.DS_ERR_COMM_PEER;
    public static final int COMM_MISMATCH = ds_status_code.DS_ERR_COMM_MISMATCH;
    public static final int IO = ds_status_code.DS_ERR_IO;
    public static final int CORRUPT = ds_status_code.DS_ERR_CORRUPT;
    public static final int CONFIG = ds_status_code.DS_ERR_CONFIG;
    public static final int CONFIG_PARSE = ds_status_code.DS_ERR_CONFIG_PARSE;
    public static final int CONFIG_UNKNOWN_KEY = ds_status_code.DS_ERR_CONFIG_UNKNOWN_KEY;
    public static final int CONFIG_VALUE = ds_status_code.DS_ERR_CONFIG_VALUE;
    public static final int CONFIG_BATCH = ds_status_code.DS_ERR_CONFIG_BATCH;
    public static final int CONFIG_UNSUPPORTED = ds_status_code.DS_ERR_CONFIG_UNSUPPORTED;

    private Status() {}

    /** The library's text for a code ({@code ds_status_str}), e.g. "invalid argument". */
    public static String describe(int code) {
        return DsabiNative.status_str(code);
    }
}
