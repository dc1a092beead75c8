package org.dsabi;

/** Curriculum schedules ({@code enum ds_data_schedule}). */
public enum Schedule {
    FIXED_LINEAR(ds_data_schedule.DS_DATA_SCHEDULE_FIXED_LINEAR),
    FIXED_ROOT(ds_data_schedule.DS_DATA_SCHEDULE_FIXED_ROOT),
    FIXED_DISCRETE(ds_data_schedule.DS_DATA_SCHEDULE_FIXED_DISCRETE),
    /** A {@link DifficultySchedule}. */
    CUSTOM(ds_data_schedule.DS_DATA_SCHEDULE_CUSTOM);

    private final int code;

    Schedule(int code) {
        this.code = code;
    }

    /** The {@code ds_data_schedule} value. */
    public int code() {
        return code;
    }

    static Schedule fromCode(int code) {
        for (Schedule v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_schedule " + code);
    }
}
