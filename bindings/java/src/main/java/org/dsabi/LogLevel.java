package org.dsabi;

/** Log levels ({@code enum ds_log_level}), most severe first. */
public enum LogLevel {
    NONE(ds_log_level.DS_LOG_NONE),
    ERROR(ds_log_level.DS_LOG_ERROR),
    WARN(ds_log_level.DS_LOG_WARN),
    INFO(ds_log_level.DS_LOG_INFO),
    DEBUG(ds_log_level.DS_LOG_DEBUG);

    private final int code;

    LogLevel(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static LogLevel fromCode(int code) {
        for (LogLevel l : values()) {
            if (l.code == code) {
                return l;
            }
        }
        throw new IllegalArgumentException("unknown ds_log_level " + code);
    }
}
