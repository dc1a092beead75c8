package org.dsabi;

/** What {@link Ops#gemm} applies to its result ({@code enum ds_epilogue}); epilogues need beta = 0. */
public enum Epilogue {
    NONE(ds_epilogue.DS_EPILOGUE_NONE),
    /** + bias[N]. */
    BIAS(ds_epilogue.DS_EPILOGUE_BIAS),
    /** GELU (tanh) of the result. */
    GELU(ds_epilogue.DS_EPILOGUE_GELU),
    /** GELU (tanh) of result + bias. */
    BIAS_GELU(ds_epilogue.DS_EPILOGUE_BIAS_GELU);

    private final int code;

    Epilogue(int code) {
        this.code = code;
    }

    /** The {@code ds_epilogue} value. */
    public int code() {
        return code;
    }

    static Epilogue fromCode(int code) {
        for (Epilogue v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_epilogue " + code);
    }
}
