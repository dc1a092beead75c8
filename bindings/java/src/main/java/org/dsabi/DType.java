package org.dsabi;

/** Element types of tensors ({@code enum ds_dtype}). */
public enum DType {
    F32(ds_dtype.DS_DTYPE_F32),
    F16(ds_dtype.DS_DTYPE_F16),
    BF16(ds_dtype.DS_DTYPE_BF16),
    F64(ds_dtype.DS_DTYPE_F64),
    I8(ds_dtype.DS_DTYPE_I8),
    U8(ds_dtype.DS_DTYPE_U8),
    I32(ds_dtype.DS_DTYPE_I32),
    I64(ds_dtype.DS_DTYPE_I64),
    /** Reserved for future kernels. */
    FP8_E4M3(ds_dtype.DS_DTYPE_FP8_E4M3),
    /** Reserved for future kernels. */
    FP8_E5M2(ds_dtype.DS_DTYPE_FP8_E5M2);

    private final int code;

    DType(int code) {
        this.code = code;
    }

    /** The {@code ds_dtype} value. */
    public int code() {
        return code;
    }

    /** Bytes per element. */
    public int size() {
        return (int) DsabiNative.dtype_size(code);
    }

    /** The library's name: "f32", "bf16", ... */
    public String libraryName() {
        return DsabiNative.dtype_name(code);
    }

    public static DType fromCode(int code) {
        for (DType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown ds_dtype " + code);
    }
}
