package org.dsabi;

/** How {@link DatasetBuilder} splits text into documents ({@code enum ds_data_split}). */
public enum Split {
    /** Each input file is one document. */
    FILE(ds_data_split.DS_DATA_SPLIT_FILE),
    /** Each non-empty line (without its newline). */
    LINE(ds_data_split.DS_DATA_SPLIT_LINE),
    /** Blocks separated by blank lines. */
    PARAGRAPH(ds_data_split.DS_DATA_SPLIT_PARAGRAPH),
    /** Text between occurrences of a delimiter. */
    DELIMITER(ds_data_split.DS_DATA_SPLIT_DELIMITER);

    private final int code;

    Split(int code) {
        this.code = code;
    }

    /** The {@code ds_data_split} value. */
    public int code() {
        return code;
    }

    static Split fromCode(int code) {
        for (Split v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_split " + code);
    }
}
