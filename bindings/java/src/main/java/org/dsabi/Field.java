package org.dsabi;

/** The tensors of a {@link Batch} ({@code enum ds_data_field}). */
public enum Field {
    /** [B, T] ids. */
    TOKENS(ds_data_field.DS_DATA_FIELD_TOKENS),
    /** [B] i32: real tokens per row. */
    LENGTHS(ds_data_field.DS_DATA_FIELD_LENGTHS),
    /** [n] i64: the samples of the batch in row order. */
    SAMPLE_IDS(ds_data_field.DS_DATA_FIELD_SAMPLE_IDS),
    /** Packed only: [segments + 1] i32 segment starts. */
    CU_SEQLENS(ds_data_field.DS_DATA_FIELD_CU_SEQLENS),
    /** Packed only: [B, T] i32 positions restarting per sequence. */
    POSITION_IDS(ds_data_field.DS_DATA_FIELD_POSITION_IDS),
    /** Packed only: [B, T] i32 sequence index in its row, -1 on padding. */
    SEQUENCE_IDS(ds_data_field.DS_DATA_FIELD_SEQUENCE_IDS);

    private final int code;

    Field(int code) {
        this.code = code;
    }

    /** The {@code ds_data_field} value. */
    public int code() {
        return code;
    }

    static Field fromCode(int code) {
        for (Field v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_field " + code);
    }
}
