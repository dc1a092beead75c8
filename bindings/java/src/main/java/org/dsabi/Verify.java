package org.dsabi;

/** How much {@link TokenDataset#open} checks ({@code enum ds_data_verify}). */
public enum Verify {
    /** Header fields, checksum and sizes. */
    HEADER(ds_data_verify.DS_DATA_VERIFY_HEADER),
    /** Also every document offset (the default). */
    OFFSETS(ds_data_verify.DS_DATA_VERIFY_OFFSETS),
    /** Also the token checksum and every id (reads the file). */
    FULL(ds_data_verify.DS_DATA_VERIFY_FULL);

    private final int code;

    Verify(int code) {
        this.code = code;
    }

    /** The {@code ds_data_verify} value. */
    public int code() {
        return code;
    }

    static Verify fromCode(int code) {
        for (Verify v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_verify " + code);
    }
}
