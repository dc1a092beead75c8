package org.dsabi;

/** What a curriculum difficulty means ({@code enum ds_data_difficulty_type}). */
public enum DifficultyType {
    /** A metric value. */
    VALUE(ds_data_difficulty_type.DS_DATA_DIFFICULTY_VALUE),
    /** A percentile of samples sorted by metric. */
    PERCENTILE(ds_data_difficulty_type.DS_DATA_DIFFICULTY_PERCENTILE);

    private final int code;

    DifficultyType(int code) {
        this.code = code;
    }

    /** The {@code ds_data_difficulty_type} value. */
    public int code() {
        return code;
    }

    static DifficultyType fromCode(int code) {
        for (DifficultyType v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_difficulty_type " + code);
    }
}
