package org.dsabi;

/** Optimizers of {@link Ops#optimStep} ({@code enum ds_optim_kind}). */
public enum OptimKind {
    /** L2 weight decay added to the gradient (torch.optim.Adam). */
    ADAM(ds_optim_kind.DS_OPTIM_ADAM),
    /** Decoupled weight decay (torch.optim.AdamW). */
    ADAMW(ds_optim_kind.DS_OPTIM_ADAMW),
    /** DeepSpeed's FusedLamb: the Adam update scaled by a per-tensor trust ratio. */
    LAMB(ds_optim_kind.DS_OPTIM_LAMB),
    /** Sign of the interpolated momentum, decoupled weight decay. */
    LION(ds_optim_kind.DS_OPTIM_LION),
    /** torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay. */
    SGD(ds_optim_kind.DS_OPTIM_SGD),
    /** torch.optim.Adagrad: lr_decay, L2 weight decay. */
    ADAGRAD(ds_optim_kind.DS_OPTIM_ADAGRAD);

    private final int code;

    OptimKind(int code) {
        this.code = code;
    }

    /** The {@code ds_optim_kind} value. */
    public int code() {
        return code;
    }

    static OptimKind fromCode(int code) {
        for (OptimKind v : values()) {
            if (v.code == code) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown ds_optim_kind " + code);
    }
}
