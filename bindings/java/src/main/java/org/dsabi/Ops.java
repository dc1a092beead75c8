package org.dsabi;

import java.lang.ref.Reference;

/**
 * The op layer ({@code ds_op_*}): optimizer steps, reductions and casts, transformer ops, GEMM,
 * attention and quantization on CPU or CUDA {@link Tensor}s.
 *
 * <pre>{@code
 * try (Tensor x = Tensor.of(values, 8, 64); Tensor w = Tensor.create(DType.F32, 64).fill(1);
 *      Tensor y = Tensor.create(DType.F32, 8, 64)) {
 *     Ops.layerNorm(x, w, null, 1e-5f, y, null, null);
 *     Ops.gemm(x, weight, null, out, new Ops.GemmOptions().transB(true));   // x @ weight^T
 *     double norm = Ops.globalNorm(grads);
 *     boolean skipped = Ops.optimStep(new Ops.OptimOptions(OptimKind.ADAMW).lr(1e-3f), step,
 *             params, grads, expAvg, expAvgSq, null);
 * }
 * }</pre>
 *
 * <p>Every method mirrors the C function of the same name: same arguments in the same order, the
 * output tensors allocated by the caller with the documented shape and dtype (methods with one
 * output return it, for chaining), {@code null} for an optional tensor. Tensor lists are arrays
 * ({@code null} is an empty list). A failed call throws a {@link DsException} whose code is the
 * status ({@link Status#INVALID_ARG} with a message naming the C argument, its shape or dtype and
 * what was expected; {@link Status#DEVICE_MISMATCH}; {@link Status#UNSUPPORTED}).
 *
 * <p>Options are builders ({@link OptimOptions}, {@link GemmOptions}, {@link AttnOptions},
 * {@link QuantOptions}): what is not set keeps the library's default ({@code ds_<x>_options_init};
 * the getters show the values a call would use). A {@code null} options object means all defaults.
 *
 * <p>CUDA ops are asynchronous (queued on the device's legacy default stream): their results are
 * ready for any later op, collective or copy on that device, and for the host after
 * {@link Device#synchronize()}; the tensors must stay open until then. {@link #globalNorm} and
 * {@link #findNonfinite} synchronise. All methods are thread-safe; {@link #setCpuIsa} and
 * {@link #setNumThreads} are process-global.
 */
public final class Ops {
    private Ops() {}

    // ---- options --------------------------------------------------------------------------------

    /**
     * Hyper-parameters of {@link #optimStep} ({@code ds_optim_options_t}). The defaults depend on the
     * kind: those of torch.optim, and DeepSpeed's FusedLamb for LAMB.
     */
    public static final class OptimOptions {
        private final OptimKind kind;
        private Float lr;
        private Float beta1;
        private Float beta2;
        private Float eps;
        private Float weightDecay;
        private Boolean biasCorrection;
        private Float momentum;
        private Float dampening;
        private Boolean nesterov;
        private Float lrDecay;
        private Float maxCoeff;
        private Float minCoeff;
        private Float gradScale;
        private Boolean checkFinite;

        public OptimOptions(OptimKind kind) {
            if (kind == null) {
                throw new NullPointerException("kind");
            }
            this.kind = kind;
        }

        public OptimKind kind() {
            return kind;
        }

        public OptimOptions lr(float v) {
            lr = v;
            return this;
        }

        /** beta1 and beta2 (Adam, AdamW, LAMB, Lion). */
        public OptimOptions betas(float b1, float b2) {
            beta1 = b1;
            beta2 = b2;
            return this;
        }

        /** Adam, AdamW, LAMB, Adagrad. */
        public OptimOptions eps(float v) {
            eps = v;
            return this;
        }

        public OptimOptions weightDecay(float v) {
            weightDecay = v;
            return this;
        }

        /** Adam, AdamW, LAMB (default on). */
        public OptimOptions biasCorrection(boolean v) {
            biasCorrection = v;
            return this;
        }

        /** SGD. */
        public OptimOptions momentum(float v) {
            momentum = v;
            return this;
        }

        /** SGD. */
        public OptimOptions dampening(float v) {
            dampening = v;
            return this;
        }

        /** SGD. */
        public OptimOptions nesterov(boolean v) {
            nesterov = v;
            return this;
        }

        /** Adagrad. */
        public OptimOptions lrDecay(float v) {
            lrDecay = v;
            return this;
        }

        /** LAMB's trust-ratio clamp (defaults 0.01 and 10). */
        public OptimOptions trustRatioClamp(float min, float max) {
            minCoeff = min;
            maxCoeff = max;
            return this;
        }

        /** Every gradient is multiplied by this first (1/loss scale, a clip coefficient); default 1. */
        public OptimOptions gradScale(float v) {
            gradScale = v;
            return this;
        }

        /** A non-finite gradient anywhere skips the whole step (default on). */
        public OptimOptions checkFinite(boolean v) {
            checkFinite = v;
            return this;
        }

        public float lr() {
            return read(o -> o.getLr());
        }

        public float beta1() {
            return read(o -> o.getBeta1());
        }

        public float beta2() {
            return read(o -> o.getBeta2());
        }

        public float eps() {
            return read(o -> o.getEps());
        }

        public float weightDecay() {
            return read(o -> o.getWeight_decay());
        }

        public boolean biasCorrection() {
            return read(o -> o.getBias_correction()) != 0;
        }

        public float momentum() {
            return read(o -> o.getMomentum());
        }

        public float dampening() {
            return read(o -> o.getDampening());
        }

        public boolean nesterov() {
            return read(o -> o.getNesterov()) != 0;
        }

        public float lrDecay() {
            return read(o -> o.getLr_decay());
        }

        public float maxCoeff() {
            return read(o -> o.getMax_coeff());
        }

        public float minCoeff() {
            return read(o -> o.getMin_coeff());
        }

        public float gradScale() {
            return read(o -> o.getGrad_scale());
        }

        public boolean checkFinite() {
            return read(o -> o.getCheck_finite()) != 0;
        }

        private <T> T read(java.util.function.Function<org.dsabi.OptimOptions, T> get) {
            org.dsabi.OptimOptions raw = toNative();
            try {
                return get.apply(raw);
            } finally {
                raw.delete();
            }
        }

        /** The C struct: the kind's defaults, then what was set. The caller deletes it. */
        org.dsabi.OptimOptions toNative() {
            org.dsabi.OptimOptions raw = new org.dsabi.OptimOptions(kind.code());
            if (lr != null) {
                raw.setLr(lr);
            }
            if (beta1 != null) {
                raw.setBeta1(beta1);
                raw.setBeta2(beta2);
            }
            if (eps != null) {
                raw.setEps(eps);
            }
            if (weightDecay != null) {
                raw.setWeight_decay(weightDecay);
            }
            if (biasCorrection != null) {
                raw.setBias_correction(biasCorrection ? 1 : 0);
            }
            if (momentum != null) {
                raw.setMomentum(momentum);
            }
            if (dampening != null) {
                raw.setDampening(dampening);
            }
            if (nesterov != null) {
                raw.setNesterov(nesterov ? 1 : 0);
            }
            if (lrDecay != null) {
                raw.setLr_decay(lrDecay);
            }
            if (maxCoeff != null) {
                raw.setMax_coeff(maxCoeff);
                raw.setMin_coeff(minCoeff);
            }
            if (gradScale != null) {
                raw.setGrad_scale(gradScale);
            }
            if (checkFinite != null) {
                raw.setCheck_finite(checkFinite ? 1 : 0);
            }
            return raw;
        }
    }

    /** Options of {@link #gemm} ({@code ds_gemm_options_t}). */
    public static final class GemmOptions {
        private Boolean transA;
        private Boolean transB;
        private Float alpha;
        private Float beta;
        private Epilogue epilogue;

        /** A is [K, M] instead of [M, K]. */
        public GemmOptions transA(boolean v) {
            transA = v;
            return this;
        }

        /** B is [N, K] (a torch Linear weight) instead of [K, N]. */
        public GemmOptions transB(boolean v) {
            transB = v;
            return this;
        }

        public GemmOptions alpha(float v) {
            alpha = v;
            return this;
        }

        /** 0: C is overwritten; 1: accumulated into. */
        public GemmOptions beta(float v) {
            beta = v;
            return this;
        }

        /** The epilogues need beta = 0. */
        public GemmOptions epilogue(Epilogue v) {
            epilogue = v;
            return this;
        }

        public boolean transA() {
            return read(o -> o.getTrans_a()) != 0;
        }

        public boolean transB() {
            return read(o -> o.getTrans_b()) != 0;
        }

        public float alpha() {
            return read(o -> o.getAlpha());
        }

        public float beta() {
            return read(o -> o.getBeta());
        }

        public Epilogue epilogue() {
            return Epilogue.fromCode(read(o -> o.getEpilogue()));
        }

        private <T> T read(java.util.function.Function<org.dsabi.GemmOptions, T> get) {
            org.dsabi.GemmOptions raw = toNative();
            try {
                return get.apply(raw);
            } finally {
                raw.delete();
            }
        }

        org.dsabi.GemmOptions toNative() {
            org.dsabi.GemmOptions raw = new org.dsabi.GemmOptions();
            if (transA != null) {
                raw.setTrans_a(transA ? 1 : 0);
            }
            if (transB != null) {
                raw.setTrans_b(transB ? 1 : 0);
            }
            if (alpha != null) {
                raw.setAlpha(alpha);
            }
            if (beta != null) {
                raw.setBeta(beta);
            }
            if (epilogue != null) {
                raw.setEpilogue(epilogue.code());
            }
            return raw;
        }
    }

    /** Options of {@link #attention} and {@link #attentionBackward} ({@code ds_attn_options_t}). */
    public static final class AttnOptions {
        private Boolean causal;
        private Float scale;

        /** Query i sees keys j &lt;= i + (S_kv - S), aligned at the bottom right. */
        public AttnOptions causal(boolean v) {
            causal = v;
            return this;
        }

        /** Scores are q.k * scale; 0 (the default) means 1 / sqrt(D). */
        public AttnOptions scale(float v) {
            scale = v;
            return this;
        }

        public boolean causal() {
            return read(o -> o.getCausal()) != 0;
        }

        public float scale() {
            return read(o -> o.getScale());
        }

        private <T> T read(java.util.function.Function<org.dsabi.AttnOptions, T> get) {
            org.dsabi.AttnOptions raw = toNative();
            try {
                return get.apply(raw);
            } finally {
                raw.delete();
            }
        }

        org.dsabi.AttnOptions toNative() {
            org.dsabi.AttnOptions raw = new org.dsabi.AttnOptions();
            if (causal != null) {
                raw.setCausal(causal ? 1 : 0);
            }
            if (scale != null) {
                raw.setScale(scale);
            }
            return raw;
        }
    }

    /** Options of {@link #quantize}, {@link #dequantize} and {@link #gemmWq} ({@code ds_quant_options_t}). */
    public static final class QuantOptions {
        private Integer bits;
        private Integer groupSize;
        private Boolean symmetric;

        /** 8 or 4. */
        public QuantOptions bits(int v) {
            bits = v;
            return this;
        }

        /** Elements per scale along the last dimension; must divide it (default 128). */
        public QuantOptions groupSize(int v) {
            groupSize = v;
            return this;
        }

        /** true: q = round(x / scale); false: asymmetric, with a zero point per group. */
        public QuantOptions symmetric(boolean v) {
            symmetric = v;
            return this;
        }

        public int bits() {
            return read(o -> o.getBits());
        }

        public int groupSize() {
            return read(o -> o.getGroup_size());
        }

        public boolean symmetric() {
            return read(o -> o.getSymmetric()) != 0;
        }

        private <T> T read(java.util.function.Function<org.dsabi.QuantOptions, T> get) {
            org.dsabi.QuantOptions raw = toNative();
            try {
                return get.apply(raw);
            } finally {
                raw.delete();
            }
        }

        org.dsabi.QuantOptions toNative() {
            org.dsabi.QuantOptions raw = new org.dsabi.QuantOptions();
            if (bits != null) {
                raw.setBits(bits);
            }
            if (groupSize != null) {
                raw.setGroup_size(groupSize);
            }
            if (symmetric != null) {
                raw.setSymmetric(symmetric ? 1 : 0);
            }
            return raw;
        }
    }

    // ---- CPU kernels ----------------------------------------------------------------------------

    /**
     * The instruction set the CPU kernels use: the best this CPU has, or what {@link #setCpuIsa}
     * or the DSABI_CPU_ISA environment variable ("scalar", "avx2", "avx512") chose.
     */
    public static CpuIsa cpuIsa() {
        return CpuIsa.fromCode(DsabiNative.op_get_cpu_isa());
    }

    /** Forces an instruction set; {@link Status#UNSUPPORTED} if this CPU lacks it. Process-global. */
    public static void setCpuIsa(CpuIsa isa) {
        DsabiNative.op_set_cpu_isa(isa.code());
    }

    /** Threads of the CPU kernels. */
    public static int numThreads() {
        return DsabiNative.op_get_num_threads();
    }

    /** Threads of the CPU kernels; 0 restores the default (OMP_NUM_THREADS, else every core). */
    public static void setNumThreads(int n) {
        DsabiNative.op_set_num_threads(n);
    }

    // ---- optimizers -----------------------------------------------------------------------------

    /**
     * One optimizer step over many parameters ({@code ds_op_optim_step}; one launch on CUDA).
     * Arrays are parallel (entry i of each belongs to parameter i); {@code null} is an empty array.
     *
     * @param params   f32 master weights, updated in place
     * @param grads    f32, f16 or bf16, same shapes; read only
     * @param state1   f32 exp_avg (Adam, AdamW, LAMB, Lion), momentum buffer (SGD; none when
     *                 momentum is 0), sum of squares (Adagrad)
     * @param state2   f32 exp_avg_sq (Adam, AdamW, LAMB); none for the others
     * @param paramsLp optional f16/bf16 working copies written from the updated params
     * @param step     the 1-based number of this step
     * @return whether the step was skipped (check_finite and a non-finite gradient: nothing written)
     */
    public static boolean optimStep(OptimOptions options, long step, Tensor[] params, Tensor[] grads, Tensor[] state1,
            Tensor[] state2, Tensor[] paramsLp) {
        org.dsabi.OptimOptions raw = options == null ? null : options.toNative();
        try {
            return DsabiNative.op_optim_step(raw, step, pointers(params), pointers(grads), pointers(state1),
                    pointers(state2), pointers(paramsLp));
        } finally {
            if (raw != null) {
                raw.delete();
            }
            Reference.reachabilityFence(params);
            Reference.reachabilityFence(grads);
            Reference.reachabilityFence(state1);
            Reference.reachabilityFence(state2);
            Reference.reachabilityFence(paramsLp);
        }
    }

    // ---- reductions and element-wise utilities --------------------------------------------------

    /** L2 norm over every element of every tensor (float dtypes). Synchronises. */
    public static double globalNorm(Tensor... tensors) {
        try {
            return DsabiNative.op_global_norm(pointers(tensors));
        } finally {
            Reference.reachabilityFence(tensors);
        }
    }

    /** Multiplies every element of every tensor by alpha, in place. */
    public static void scale(double alpha, Tensor... tensors) {
        try {
            DsabiNative.op_scale(pointers(tensors), alpha);
        } finally {
            Reference.reachabilityFence(tensors);
        }
    }

    /** Whether any element of any tensor is inf or nan. Synchronises. */
    public static boolean findNonfinite(Tensor... tensors) {
        try {
            return DsabiNative.op_find_nonfinite(pointers(tensors));
        } finally {
            Reference.reachabilityFence(tensors);
        }
    }

    /**
     * dst = src * scale, converted between F32, F16, BF16, F64, FP8_E4M3 and FP8_E5M2 (round to
     * nearest even; conversions to FP8 saturate, nan stays nan). Same number of elements.
     */
    public static Tensor cast(Tensor src, Tensor dst, float scale) {
        DsabiNative.op_cast(h(src), h(dst), scale);
        return dst;
    }

    /** {@link #cast(Tensor, Tensor, float)} with scale 1. */
    public static Tensor cast(Tensor src, Tensor dst) {
        return cast(src, dst, 1f);
    }

    // ---- transformer ops ------------------------------------------------------------------------

    /** out[N, D] = weight[V, D][ids[N]]; ids I32 or I64 in [0, V). */
    public static Tensor embedding(Tensor weight, Tensor ids, Tensor out) {
        DsabiNative.op_embedding(h(weight), h(ids), h(out));
        return out;
    }

    /** dweight[V, D] += scatter-add of dout[N, D] at ids (deterministic). */
    public static Tensor embeddingBackward(Tensor ids, Tensor dout, Tensor dweight) {
        DsabiNative.op_embedding_backward(h(ids), h(dout), h(dweight));
        return dweight;
    }

    /**
     * y[N, D] = (x - mean) * rstd * weight + bias over the last dimension; bias optional; mean and
     * rstd ([N] F32) optional outputs for the backward.
     */
    public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor y, Tensor mean, Tensor rstd) {
        DsabiNative.op_layer_norm(h(x), h(weight), h(bias), eps, h(y), h(mean), h(rstd));
        return y;
    }

    /** dx (overwritten), dweight and dbias (accumulated, optional) from dy, x and the saved mean/rstd. */
    public static Tensor layerNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dx,
            Tensor dweight, Tensor dbias) {
        DsabiNative.op_layer_norm_backward(h(dy), h(x), h(weight), h(mean), h(rstd), h(dx), h(dweight), h(dbias));
        return dx;
    }

    /** y[N, D] = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); rstd [N] F32 optional. */
    public static Tensor rmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor rstd) {
        DsabiNative.op_rms_norm(h(x), h(weight), eps, h(y), h(rstd));
        return y;
    }

    /** dx (overwritten) and dweight (accumulated, optional). */
    public static Tensor rmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dweight) {
        DsabiNative.op_rms_norm_backward(h(dy), h(x), h(weight), h(rstd), h(dx), h(dweight));
        return dx;
    }

    /** y = act(x), element-wise; y may be x. */
    public static Tensor activation(Activation act, Tensor x, Tensor y) {
        DsabiNative.op_activation(act.code(), h(x), h(y));
        return y;
    }

    /** dx = dy * act'(x); dx may be dy. */
    public static Tensor activationBackward(Activation act, Tensor x, Tensor dy, Tensor dx) {
        DsabiNative.op_activation_backward(act.code(), h(x), h(dy), h(dx));
        return dx;
    }

    /** SwiGLU: y = silu(gate) * up, all the same shape. */
    public static Tensor swiglu(Tensor gate, Tensor up, Tensor y) {
        DsabiNative.op_swiglu(h(gate), h(up), h(y));
        return y;
    }

    /** dgate and dup (overwritten) from dy. */
    public static void swigluBackward(Tensor gate, Tensor up, Tensor dy, Tensor dgate, Tensor dup) {
        DsabiNative.op_swiglu_backward(h(gate), h(up), h(dy), h(dgate), h(dup));
    }

    /** y = a + b, or y[N, D] = a[N, D] + b[D] when b has one dimension (bias add); y may be a. */
    public static Tensor add(Tensor a, Tensor b, Tensor y) {
        DsabiNative.op_add(h(a), h(b), h(y));
        return y;
    }

    /** dbias[D] += sum over the rows of dy[N, D]. */
    public static Tensor sumRows(Tensor dy, Tensor dbias) {
        DsabiNative.op_sum_rows(h(dy), h(dbias));
        return dbias;
    }

    /** y[N, D] = softmax(x * scale) over the last dimension; y may be x. */
    public static Tensor softmax(Tensor x, float scale, Tensor y) {
        DsabiNative.op_softmax(h(x), scale, h(y));
        return y;
    }

    /** dx = scale * y * (dy - sum(dy * y)) from the softmax output y; dx may be dy. */
    public static Tensor softmaxBackward(Tensor y, Tensor dy, float scale, Tensor dx) {
        DsabiNative.op_softmax_backward(h(y), h(dy), scale, h(dx));
        return dx;
    }

    /**
     * Cross-entropy of logits[N, V] against targets[N] (I32/I64), fused with its backward:
     * losses[N] F32 = logsumexp(row) - row[target]; dlogits (optional, logits' dtype, may be
     * logits) = (softmax(row) - onehot(target)) * dloss. Rows whose target is ignoreIndex get loss
     * 0 and zero gradient.
     */
    public static Tensor crossEntropy(Tensor logits, Tensor targets, long ignoreIndex, float dloss, Tensor losses,
            Tensor dlogits) {
        DsabiNative.op_cross_entropy(h(logits), h(targets), ignoreIndex, dloss, h(losses), h(dlogits));
        return losses;
    }

    /**
     * Rotary position embedding on x[N, H, D] (D even) at positions[N] (I32/I64), rotate-half pairing
     * (GPT-NeoX, Llama); inverse turns the other way (the backward). y may be x.
     */
    public static Tensor rope(Tensor x, Tensor positions, float theta, boolean inverse, Tensor y) {
        DsabiNative.op_rope(h(x), h(positions), theta, inverse, h(y));
        return y;
    }

    /**
     * Inverted dropout: y = x * keep / (1 - p), keep from a counter-based generator keyed by (seed,
     * offset + element index), the same on CPU and CUDA. The backward is the same call on dy.
     */
    public static Tensor dropout(Tensor x, float p, long seed, long offset, Tensor y) {
        DsabiNative.op_dropout(h(x), p, seed, offset, h(y));
        return y;
    }

    // ---- GEMM -----------------------------------------------------------------------------------

    /**
     * C[M, N] = epilogue(alpha * op(A) op(B) + beta * C), row-major. 3-D A, B and C are a batch (B
     * may be 2-D and shared). A and B: F32, F16 or BF16, the same; C: their dtype or F32; bias [N]
     * (optional): C's dtype.
     */
    public static Tensor gemm(Tensor a, Tensor b, Tensor bias, Tensor c, GemmOptions options) {
        org.dsabi.GemmOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_gemm(h(a), h(b), h(bias), h(c), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
        return c;
    }

    /** {@link #gemm(Tensor, Tensor, Tensor, Tensor, GemmOptions)} with the default options. */
    public static Tensor gemm(Tensor a, Tensor b, Tensor bias, Tensor c) {
        return gemm(a, b, bias, c, null);
    }

    // ---- attention ------------------------------------------------------------------------------

    /**
     * Scaled dot-product attention, flash-style: q and o [B, S, Hq, D], k and v [B, S_kv, Hkv, D]
     * (Hq a multiple of Hkv); lse [B, Hq, S] F32 (optional) receives each query row's
     * log-sum-exp for the backward.
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, AttnOptions options) {
        org.dsabi.AttnOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_attention(h(q), h(k), h(v), h(o), h(lse), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
        return o;
    }

    /** dq, dk, dv (overwritten, shapes of q, k, v) from dout, the forward's o and lse and options. */
    public static void attentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor dout, Tensor lse, Tensor dq,
            Tensor dk, Tensor dv, AttnOptions options) {
        org.dsabi.AttnOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_attention_backward(h(q), h(k), h(v), h(o), h(dout), h(lse), h(dq), h(dk), h(dv), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
    }

    // ---- quantization ---------------------------------------------------------------------------

    /**
     * Group-wise quantization of x[N, K]. 8 bits: q is I8 [N, K] (symmetric, -127..127) or U8
     * (asymmetric); 4 bits: q is U8 [N, K/2], the even element in the low nibble (symmetric values
     * stored +8). scales [N, K/group] F32; zeros [N, K/group] F32 for asymmetric only (else null).
     */
    public static void quantize(Tensor x, Tensor q, Tensor scales, Tensor zeros, QuantOptions options) {
        org.dsabi.QuantOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_quantize(h(x), h(q), h(scales), h(zeros), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
    }

    /** y[N, K] from q, scales and zeros as {@link #quantize} made them (same options). */
    public static Tensor dequantize(Tensor q, Tensor scales, Tensor zeros, Tensor y, QuantOptions options) {
        org.dsabi.QuantOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_dequantize(h(q), h(scales), h(zeros), h(y), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
        return y;
    }

    /**
     * Weight-only quantized linear: y[M, N] = x[M, K] dequant(wq)^T (+ bias[N]), with wq, scales
     * and zeros as {@link #quantize} made them from an [N, K] weight.
     */
    public static Tensor gemmWq(Tensor x, Tensor wq, Tensor scales, Tensor zeros, Tensor bias, Tensor y,
            QuantOptions options) {
        org.dsabi.QuantOptions raw = options == null ? null : options.toNative();
        try {
            DsabiNative.op_gemm_wq(h(x), h(wq), h(scales), h(zeros), h(bias), h(y), raw);
        } finally {
            if (raw != null) {
                raw.delete();
            }
        }
        return y;
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** The handle of a tensor, or null (NULL: an optional argument left out). */
    private static TensorHandle h(Tensor t) {
        return t == null ? null : t.nativeHandle();
    }

    /** Handle addresses of a list (null: an empty list); the caller keeps the array reachable. */
    private static long[] pointers(Tensor[] tensors) {
        if (tensors == null) {
            return new long[0];
        }
        long[] out = new long[tensors.length];
        for (int i = 0; i < tensors.length; i++) {
            if (tensors[i] == null) {
                throw new NullPointerException("tensor list entry " + i + " is null");
            }
            out[i] = TensorHandle.getCPtr(tensors[i].nativeHandle());
        }
        return out;
    }
}
