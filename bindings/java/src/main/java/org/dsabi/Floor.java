package org.dsabi;

/** How fixed_linear and fixed_root treat a difficulty rounded below the minimum ({@code enum ds_data_floor}). */
public enum Floor {
    /** As DeepSpeed 0.19.6 (the default). */
    NONE(ds_data_floor.DS_DATA_FLOOR_NONE),
    /** At least min_difficulty. */
    MIN(ds_data_floor.DS_DATA_FLOOR_MIN),
    /** At least the first multiple of difficulty_step at or above min_difficulty. */
    STEP_MIN(ds_data_floor.DS_DATA_FLOOR_STEP_MIN);

    private final int code;

    Floor(int code) {
        this.code = code;
    }

    /** The {@code ds_data_floor} value. */
    public int code() {
        return code;
    }

    static Floor fromCode(int code) {
        for (Floor v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_floor " + code);
    }
}
