package org.dsabi;

/** What a loader's sample is ({@code enum ds_data_mode}). */
public enum DataMode {
    /** seqLen ids from position i * windowStride of the token stream. */
    WINDOWS(ds_data_mode.DS_DATA_MODE_WINDOWS),
    /** Document i, cut at seqLen when set, padded to the longest of the batch. */
    DOCUMENTS(ds_data_mode.DS_DATA_MODE_DOCUMENTS);

    private final int code;

    DataMode(int code) {
        this.code = code;
    }

    /** The {@code ds_data_mode} value. */
    public int code() {
        return code;
    }

    static DataMode fromCode(int code) {
        for (DataMode v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_mode " + code);
    }
}
