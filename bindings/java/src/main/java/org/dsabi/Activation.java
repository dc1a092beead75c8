package org.dsabi;

/** Element-wise activations of {@link Ops#activation} ({@code enum ds_activation}). */
public enum Activation {
    /** GPT-2's GELU, the tanh approximation. */
    GELU_TANH(ds_activation.DS_ACT_GELU_TANH),
    /** Exact GELU (erf). */
    GELU(ds_activation.DS_ACT_GELU),
    /** x * sigmoid(x). */
    SILU(ds_activation.DS_ACT_SILU),
    RELU(ds_activation.DS_ACT_RELU);

    private final int code;

    Activation(int code) {
        this.code = code;
    }

    /** The {@code ds_activation} value. */
    public int code() {
        return code;
    }

    static Activation fromCode(int code) {
        for (Activation v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_activation " + code);
    }
}
