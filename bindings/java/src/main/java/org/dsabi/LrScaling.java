package org.dsabi;

/** Dynamic batching's learning-rate scaling ({@code enum ds_data_lr_scaling}). */
public enum LrScaling {
    LINEAR(ds_data_lr_scaling.DS_DATA_LR_SCALING_LINEAR),
    SQRT(ds_data_lr_scaling.DS_DATA_LR_SCALING_SQRT),
    NONE(ds_data_lr_scaling.DS_DATA_LR_SCALING_NONE);

    private final int code;

    LrScaling(int code) {
        this.code = code;
    }

    /**
     * DeepSpeed's scale_lr: the learning rate for a dynamic batch of batchSize sequences, when
     * baseBatchSize sequences take baseLr.
     */
    public double scale(long baseBatchSize, long batchSize, double baseLr) {
        return DsabiNative.data_scale_lr(code, baseBatchSize, batchSize, baseLr);
    }

    /** The {@code ds_data_lr_scaling} value. */
    public int code() {
        return code;
    }

    static LrScaling fromCode(int code) {
        for (LrScaling v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_data_lr_scaling " + code);
    }
}
