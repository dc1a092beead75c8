package org.dsabi;

/** Reduction operations of collectives ({@code enum ds_reduce_op}). AVG on integers truncates toward zero. */
public enum ReduceOp {
    SUM(ds_reduce_op.DS_REDUCE_SUM),
    AVG(ds_reduce_op.DS_REDUCE_AVG),
    MAX(ds_reduce_op.DS_REDUCE_MAX),
    MIN(ds_reduce_op.DS_REDUCE_MIN),
    PROD(ds_reduce_op.DS_REDUCE_PROD);

    private final int code;

    ReduceOp(int code) {
        this.code = code;
    }

    /** The {@code ds_reduce_op} value. */
    public int code() {
        return code;
    }

    static ReduceOp fromCode(int code) {
        for (ReduceOp v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_reduce_op " + code);
    }
}
