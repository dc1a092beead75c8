package org.dsabi;

/** Instruction sets of the CPU kernels ({@code enum ds_cpu_isa}). */
public enum CpuIsa {
    SCALAR(ds_cpu_isa.DS_CPU_ISA_SCALAR),
    /** AVX2 + FMA + F16C. */
    AVX2(ds_cpu_isa.DS_CPU_ISA_AVX2),
    /** AVX-512 F/BW/VL/DQ. */
    AVX512(ds_cpu_isa.DS_CPU_ISA_AVX512);

    private final int code;

    CpuIsa(int code) {
        this.code = code;
    }

    /** The {@code ds_cpu_isa} value. */
    public int code() {
        return code;
    }

    static CpuIsa fromCode(int code) {
        for (CpuIsa v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_cpu_isa " + code);
    }
}
