package dsabi

import (
	"runtime"
	"strconv"

	"github.com/dsabi/dsabi-go/internal/swig"
)

// The op layer (ds_op_*): optimizer steps, reductions and casts, transformer ops, GEMM, attention
// and quantization on CPU or CUDA tensors.
//
// Every function mirrors the C function of the same name: the same arguments in the same order,
// outputs allocated by the caller with the documented shape and dtype, nil for an optional tensor.
// The C out-parameters are results (GlobalNorm's norm, OptimStep's skipped flag). A failed call
// returns an *Error whose Code is the status (StatusInvalidArg with a message naming the C
// argument, its shape or dtype and what was expected; StatusDeviceMismatch; StatusUnsupported).
//
// Options structs (OptimOptions, GemmOptions, AttnOptions, QuantOptions) hold every field: start
// from DefaultOptimOptions(kind), DefaultGemmOptions() ... (the library's defaults) and change what
// you need; a nil options pointer means all defaults.
//
// CUDA ops are asynchronous (queued on the device's legacy default stream): their results are
// ready for any later op, collective or copy on that device, and for the host after
// Device.Synchronize; keep the tensors open until then. GlobalNorm and FindNonfinite synchronise.
// The functions are safe for concurrent use on distinct outputs; SetCPUISA and SetNumThreads are
// process-global.

// CPUISA is an instruction set of the CPU kernels (enum ds_cpu_isa).
type CPUISA int32

// The instruction sets of dsabi.h.
const (
	CPUISAScalar CPUISA = 0
	CPUISAAVX2   CPUISA = 1 // AVX2 + FMA + F16C
	CPUISAAVX512 CPUISA = 2 // AVX-512 F/BW/VL/DQ
)

func (i CPUISA) String() string {
	switch i {
	case CPUISAScalar:
		return "scalar"
	case CPUISAAVX2:
		return "avx2"
	case CPUISAAVX512:
		return "avx512"
	}
	return "CPUISA(" + strconv.Itoa(int(i)) + ")"
}

// OptimKind is an optimizer of OptimStep (enum ds_optim_kind).
type OptimKind int32

// The optimizers of dsabi.h.
const (
	OptimAdam    OptimKind = 0 // L2 weight decay added to the gradient (torch.optim.Adam)
	OptimAdamW   OptimKind = 1 // decoupled weight decay (torch.optim.AdamW)
	OptimLAMB    OptimKind = 2 // DeepSpeed's FusedLamb: Adam update scaled by a per-tensor trust ratio
	OptimLion    OptimKind = 3 // sign of the interpolated momentum, decoupled weight decay
	OptimSGD     OptimKind = 4 // torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay
	OptimAdagrad OptimKind = 5 // torch.optim.Adagrad: lr_decay, L2 weight decay
)

// Act is an element-wise activation (enum ds_activation).
type Act int32

// The activations of dsabi.h.
const (
	ActGELUTanh Act = 0 // GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
	ActGELU     Act = 1 // exact: 0.5 x (1 + erf(x / sqrt 2))
	ActSiLU     Act = 2 // x sigmoid(x)
	ActReLU     Act = 3
)

// Epilogue is what Gemm applies to its result (enum ds_epilogue); the epilogues need Beta = 0.
type Epilogue int32

// The epilogues of dsabi.h.
const (
	EpilogueNone     Epilogue = 0
	EpilogueBias     Epilogue = 1 // + bias[N]
	EpilogueGELU     Epilogue = 2 // GELU (tanh) of the result
	EpilogueBiasGELU Epilogue = 3 // GELU (tanh) of result + bias
)

// ---- options -------------------------------------------------------------------------------------

// OptimOptions are the hyper-parameters of OptimStep (ds_optim_options_t). Start from
// DefaultOptimOptions(kind): the zero value is not the defaults.
type OptimOptions struct {
	Kind           OptimKind
	LR             float32
	Beta1, Beta2   float32 // Adam, AdamW, LAMB, Lion
	Eps            float32 // Adam, AdamW, LAMB, Adagrad
	WeightDecay    float32
	BiasCorrection bool    // Adam, AdamW, LAMB
	Momentum       float32 // SGD
	Dampening      float32 // SGD
	Nesterov       bool    // SGD
	LRDecay        float32 // Adagrad
	MaxCoeff       float32 // LAMB's trust-ratio clamp
	MinCoeff       float32
	GradScale      float32 // every gradient is multiplied by this first (1/loss scale): 1
	CheckFinite    bool    // a non-finite gradient anywhere skips the whole step
}

// DefaultOptimOptions returns the defaults of an optimizer (ds_optim_options_init): those of
// torch.optim, and DeepSpeed's FusedLamb for LAMB.
func DefaultOptimOptions(kind OptimKind) OptimOptions {
	raw := swig.NewOptimOptions(int(kind))
	defer swig.DeleteOptimOptions(raw)
	return OptimOptions{
		Kind:           kind,
		LR:             raw.GetLr(),
		Beta1:          raw.GetBeta1(),
		Beta2:          raw.GetBeta2(),
		Eps:            raw.GetEps(),
		WeightDecay:    raw.GetWeight_decay(),
		BiasCorrection: raw.GetBias_correction() != 0,
		Momentum:       raw.GetMomentum(),
		Dampening:      raw.GetDampening(),
		Nesterov:       raw.GetNesterov() != 0,
		LRDecay:        raw.GetLr_decay(),
		MaxCoeff:       raw.GetMax_coeff(),
		MinCoeff:       raw.GetMin_coeff(),
		GradScale:      raw.GetGrad_scale(),
		CheckFinite:    raw.GetCheck_finite() != 0,
	}
}

func (o *OptimOptions) native() swig.OptimOptions {
	raw := swig.NewOptimOptions(int(o.Kind))
	raw.SetLr(o.LR)
	raw.SetBeta1(o.Beta1)
	raw.SetBeta2(o.Beta2)
	raw.SetEps(o.Eps)
	raw.SetWeight_decay(o.WeightDecay)
	raw.SetBias_correction(boolInt(o.BiasCorrection))
	raw.SetMomentum(o.Momentum)
	raw.SetDampening(o.Dampening)
	raw.SetNesterov(boolInt(o.Nesterov))
	raw.SetLr_decay(o.LRDecay)
	raw.SetMax_coeff(o.MaxCoeff)
	raw.SetMin_coeff(o.MinCoeff)
	raw.SetGrad_scale(o.GradScale)
	raw.SetCheck_finite(boolInt(o.CheckFinite))
	return raw
}

// GemmOptions are the options of Gemm (ds_gemm_options_t). Start from DefaultGemmOptions(): the
// zero value has Alpha 0.
type GemmOptions struct {
	TransA   bool    // A is [K, M] instead of [M, K]
	TransB   bool    // B is [N, K] (a torch Linear weight) instead of [K, N]
	Alpha    float32 // 1
	Beta     float32 // 0: C is overwritten; 1: accumulated into
	Epilogue Epilogue
}

// DefaultGemmOptions returns the library's defaults (ds_gemm_options_init).
func DefaultGemmOptions() GemmOptions {
	raw := swig.NewGemmOptions()
	defer swig.DeleteGemmOptions(raw)
	return GemmOptions{
		TransA:   raw.GetTrans_a() != 0,
		TransB:   raw.GetTrans_b() != 0,
		Alpha:    raw.GetAlpha(),
		Beta:     raw.GetBeta(),
		Epilogue: Epilogue(raw.GetEpilogue()),
	}
}

func (o *GemmOptions) native() swig.GemmOptions {
	raw := swig.NewGemmOptions()
	raw.SetTrans_a(boolInt(o.TransA))
	raw.SetTrans_b(boolInt(o.TransB))
	raw.SetAlpha(o.Alpha)
	raw.SetBeta(o.Beta)
	raw.SetEpilogue(int(o.Epilogue))
	return raw
}

// AttnOptions are the options of Attention and AttentionBackward (ds_attn_options_t).
type AttnOptions struct {
	Causal bool    // query i sees keys j <= i + (S_kv - S), aligned at the bottom right
	Scale  float32 // 0: 1 / sqrt(D)
}

// DefaultAttnOptions returns the library's defaults (ds_attn_options_init).
func DefaultAttnOptions() AttnOptions {
	raw := swig.NewAttnOptions()
	defer swig.DeleteAttnOptions(raw)
	return AttnOptions{Causal: raw.GetCausal() != 0, Scale: raw.GetScale()}
}

func (o *AttnOptions) native() swig.AttnOptions {
	raw := swig.NewAttnOptions()
	raw.SetCausal(boolInt(o.Causal))
	raw.SetScale(o.Scale)
	return raw
}

// QuantOptions are the options of Quantize, Dequantize and GemmWQ (ds_quant_options_t). Start from
// DefaultQuantOptions().
type QuantOptions struct {
	Bits      int  // 8 or 4
	GroupSize int  // elements per scale along the last dimension; must divide it (128)
	Symmetric bool // false: asymmetric, with a zero point per group
}

// DefaultQuantOptions returns the library's defaults (ds_quant_options_init).
func DefaultQuantOptions() QuantOptions {
	raw := swig.NewQuantOptions()
	defer swig.DeleteQuantOptions(raw)
	return QuantOptions{Bits: raw.GetBits(), GroupSize: raw.GetGroup_size(), Symmetric: raw.GetSymmetric() != 0}
}

func (o *QuantOptions) native() swig.QuantOptions {
	raw := swig.NewQuantOptions()
	raw.SetBits(o.Bits)
	raw.SetGroup_size(o.GroupSize)
	raw.SetSymmetric(boolInt(o.Symmetric))
	return raw
}

// ---- arguments -----------------------------------------------------------------------------------

// opArgs collects the handles of one call: the first closed tensor is the call's error, and the
// tensors stay reachable until the call returns.
type opArgs struct {
	err  error
	keep []*Tensor
}

// t is the handle of an argument; nil stays nil (NULL: an optional argument left out).
func (a *opArgs) t(x *Tensor, name string) swig.TensorHandle {
	if x == nil {
		return nil
	}
	if x.h == nil {
		if a.err == nil {
			a.err = errClosed("Tensor passed as " + name)
		}
		return nil
	}
	a.keep = append(a.keep, x)
	return x.h
}

// list is a tensor list as handle addresses (C memory, not Go pointers); nil entries are NULL.
func (a *opArgs) list(xs []*Tensor, name string) []uintptr {
	out := make([]uintptr, len(xs))
	for i, x := range xs {
		if h := a.t(x, name+"["+strconv.Itoa(i)+"]"); h != nil {
			out[i] = h.Swigcptr()
		}
	}
	return out
}

func (a *opArgs) call(f func()) error {
	if a.err != nil {
		return a.err
	}
	defer runtime.KeepAlive(a.keep)
	return call(f)
}

// ---- CPU kernels ---------------------------------------------------------------------------------

// GetCPUISA is the instruction set the CPU kernels use: the best this CPU has, or what SetCPUISA
// or $DSABI_CPU_ISA ("scalar", "avx2", "avx512") chose.
func GetCPUISA() (CPUISA, error) {
	var isa int
	err := call(func() { isa = swig.Op_get_cpu_isa() })
	return CPUISA(isa), err
}

// SetCPUISA forces an instruction set (for tests and comparisons); StatusUnsupported if this CPU
// lacks it. Process-global.
func SetCPUISA(isa CPUISA) error {
	return call(func() { swig.Op_set_cpu_isa(int(isa)) })
}

// GetNumThreads is the number of threads of the CPU kernels.
func GetNumThreads() (int, error) {
	var n int
	err := call(func() { n = swig.Op_get_num_threads() })
	return n, err
}

// SetNumThreads sets the threads of the CPU kernels; 0 restores the default ($OMP_NUM_THREADS,
// else every core). Process-global.
func SetNumThreads(n int) error {
	return call(func() { swig.Op_set_num_threads(n) })
}

// ---- optimizers ----------------------------------------------------------------------------------

// OptimStep runs one optimizer step over many parameters (ds_op_optim_step; one launch on CUDA).
// The lists are parallel (entry i of each belongs to parameter i); a list that the optimizer does
// not use is nil:
//
//	params    f32 master weights, updated in place
//	grads     f32, f16 or bf16, same shapes; read only
//	state1    f32 exp_avg (Adam, AdamW, LAMB, Lion), momentum buffer (SGD; none when momentum is
//	          0), sum of squares (Adagrad)
//	state2    f32 exp_avg_sq (Adam, AdamW, LAMB)
//	paramsLP  optional f16/bf16 working copies written from the updated params
//
// step is the 1-based number of this step. skipped reports a step skipped by CheckFinite (a
// gradient held inf or nan; nothing was written).
func OptimStep(opts *OptimOptions, step int64, params, grads, state1, state2, paramsLP []*Tensor) (skipped bool, err error) {
	var a opArgs
	p, g := a.list(params, "params"), a.list(grads, "grads")
	s1, s2, lp := a.list(state1, "state1"), a.list(state2, "state2"), a.list(paramsLP, "params_lp")
	var raw swig.OptimOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteOptimOptions(raw)
	}
	err = a.call(func() { skipped = swig.Op_optim_step(raw, step, p, g, s1, s2, lp) })
	return skipped, err
}

// ---- reductions and element-wise utilities -------------------------------------------------------

// GlobalNorm is the L2 norm over every element of every tensor (float dtypes). A non-finite element
// gives a non-finite norm. It synchronises.
func GlobalNorm(tensors ...*Tensor) (float64, error) {
	var a opArgs
	hs := a.list(tensors, "tensors")
	var norm float64
	err := a.call(func() { norm = swig.Op_global_norm(hs) })
	return norm, err
}

// Scale multiplies every element of every tensor by alpha, in place.
func Scale(alpha float64, tensors ...*Tensor) error {
	var a opArgs
	hs := a.list(tensors, "tensors")
	return a.call(func() { swig.Op_scale(hs, alpha) })
}

// FindNonfinite reports whether any element of any tensor is inf or nan. It synchronises.
func FindNonfinite(tensors ...*Tensor) (bool, error) {
	var a opArgs
	hs := a.list(tensors, "tensors")
	var found bool
	err := a.call(func() { found = swig.Op_find_nonfinite(hs) })
	return found, err
}

// Cast computes dst = src * scale, converted between f32, f16, bf16, f64, FP8 E4M3 and FP8 E5M2
// (round to nearest even; conversions to FP8 saturate, nan stays nan). Same number of elements.
func Cast(src, dst *Tensor, scale float32) error {
	var a opArgs
	s, d := a.t(src, "src"), a.t(dst, "dst")
	return a.call(func() { swig.Op_cast(s, d, scale) })
}

// ---- transformer ops -----------------------------------------------------------------------------

// Embedding computes out[N, D] = weight[V, D][ids[N]]; ids i32 or i64 in [0, V).
func Embedding(weight, ids, out *Tensor) error {
	var a opArgs
	w, i, o := a.t(weight, "weight"), a.t(ids, "ids"), a.t(out, "out")
	return a.call(func() { swig.Op_embedding(w, i, o) })
}

// EmbeddingBackward accumulates dweight[V, D] += the scatter-add of dout[N, D] at ids.
func EmbeddingBackward(ids, dout, dweight *Tensor) error {
	var a opArgs
	i, g, dw := a.t(ids, "ids"), a.t(dout, "dout"), a.t(dweight, "dweight")
	return a.call(func() { swig.Op_embedding_backward(i, g, dw) })
}

// LayerNorm computes y[N, D] = (x - mean) * rstd * weight + bias over the last dimension; bias is
// optional; mean and rstd ([N] f32, optional) receive the statistics for the backward.
func LayerNorm(x, weight, bias *Tensor, eps float32, y, mean, rstd *Tensor) error {
	var a opArgs
	hx, w, b := a.t(x, "x"), a.t(weight, "weight"), a.t(bias, "bias")
	hy, m, r := a.t(y, "y"), a.t(mean, "mean"), a.t(rstd, "rstd")
	return a.call(func() { swig.Op_layer_norm(hx, w, b, eps, hy, m, r) })
}

// LayerNormBackward computes dx (overwritten), dweight and dbias (accumulated, optional) from dy, x
// and the forward's mean and rstd.
func LayerNormBackward(dy, x, weight, mean, rstd, dx, dweight, dbias *Tensor) error {
	var a opArgs
	g, hx, w, m, r := a.t(dy, "dy"), a.t(x, "x"), a.t(weight, "weight"), a.t(mean, "mean"), a.t(rstd, "rstd")
	hdx, dw, db := a.t(dx, "dx"), a.t(dweight, "dweight"), a.t(dbias, "dbias")
	return a.call(func() { swig.Op_layer_norm_backward(g, hx, w, m, r, hdx, dw, db) })
}

// RMSNorm computes y[N, D] = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); rstd [N] f32 is
// optional.
func RMSNorm(x, weight *Tensor, eps float32, y, rstd *Tensor) error {
	var a opArgs
	hx, w, hy, r := a.t(x, "x"), a.t(weight, "weight"), a.t(y, "y"), a.t(rstd, "rstd")
	return a.call(func() { swig.Op_rms_norm(hx, w, eps, hy, r) })
}

// RMSNormBackward computes dx (overwritten) and dweight (accumulated, optional).
func RMSNormBackward(dy, x, weight, rstd, dx, dweight *Tensor) error {
	var a opArgs
	g, hx, w, r := a.t(dy, "dy"), a.t(x, "x"), a.t(weight, "weight"), a.t(rstd, "rstd")
	hdx, dw := a.t(dx, "dx"), a.t(dweight, "dweight")
	return a.call(func() { swig.Op_rms_norm_backward(g, hx, w, r, hdx, dw) })
}

// Activation computes y = act(x), element-wise; y may be x.
func Activation(act Act, x, y *Tensor) error {
	var a opArgs
	hx, hy := a.t(x, "x"), a.t(y, "y")
	return a.call(func() { swig.Op_activation(int(act), hx, hy) })
}

// ActivationBackward computes dx = dy * act'(x); dx may be dy.
func ActivationBackward(act Act, x, dy, dx *Tensor) error {
	var a opArgs
	hx, g, hdx := a.t(x, "x"), a.t(dy, "dy"), a.t(dx, "dx")
	return a.call(func() { swig.Op_activation_backward(int(act), hx, g, hdx) })
}

// SwiGLU computes y = silu(gate) * up, all the same shape.
func SwiGLU(gate, up, y *Tensor) error {
	var a opArgs
	hg, hu, hy := a.t(gate, "gate"), a.t(up, "up"), a.t(y, "y")
	return a.call(func() { swig.Op_swiglu(hg, hu, hy) })
}

// SwiGLUBackward computes dgate and dup (overwritten) from dy.
func SwiGLUBackward(gate, up, dy, dgate, dup *Tensor) error {
	var a opArgs
	hg, hu, g := a.t(gate, "gate"), a.t(up, "up"), a.t(dy, "dy")
	dg, du := a.t(dgate, "dgate"), a.t(dup, "dup")
	return a.call(func() { swig.Op_swiglu_backward(hg, hu, g, dg, du) })
}

// Add computes y = a + b (residual add), or y[N, D] = a[N, D] + b[D] when b has one dimension (bias
// add); y may be a.
func Add(a, b, y *Tensor) error {
	var args opArgs
	ha, hb, hy := args.t(a, "a"), args.t(b, "b"), args.t(y, "y")
	return args.call(func() { swig.Op_add(ha, hb, hy) })
}

// SumRows accumulates dbias[D] += the sum over the rows of dy[N, D].
func SumRows(dy, dbias *Tensor) error {
	var a opArgs
	g, db := a.t(dy, "dy"), a.t(dbias, "dbias")
	return a.call(func() { swig.Op_sum_rows(g, db) })
}

// Softmax computes y[N, D] = softmax(x * scale) over the last dimension; y may be x.
func Softmax(x *Tensor, scale float32, y *Tensor) error {
	var a opArgs
	hx, hy := a.t(x, "x"), a.t(y, "y")
	return a.call(func() { swig.Op_softmax(hx, scale, hy) })
}

// SoftmaxBackward computes dx = scale * y * (dy - sum(dy * y)) from the softmax output y; dx may be
// dy.
func SoftmaxBackward(y, dy *Tensor, scale float32, dx *Tensor) error {
	var a opArgs
	hy, g, hdx := a.t(y, "y"), a.t(dy, "dy"), a.t(dx, "dx")
	return a.call(func() { swig.Op_softmax_backward(hy, g, scale, hdx) })
}

// CrossEntropy computes the cross-entropy of logits[N, V] against targets[N] (i32/i64), fused with
// its backward: losses[N] f32 = logsumexp(row) - row[target]; dlogits (optional, logits' dtype; may
// be logits) = (softmax(row) - onehot(target)) * dloss. Rows whose target is ignoreIndex get loss 0
// and zero gradient.
func CrossEntropy(logits, targets *Tensor, ignoreIndex int64, dloss float32, losses, dlogits *Tensor) error {
	var a opArgs
	l, t, lo, dl := a.t(logits, "logits"), a.t(targets, "targets"), a.t(losses, "losses"), a.t(dlogits, "dlogits")
	return a.call(func() { swig.Op_cross_entropy(l, t, ignoreIndex, dloss, lo, dl) })
}

// RoPE applies rotary position embedding to x[N, H, D] (D even) at positions[N] (i32/i64) with the
// rotate-half pairing of GPT-NeoX and Llama; inverse turns the other way (the backward). y may be x.
func RoPE(x, positions *Tensor, theta float32, inverse bool, y *Tensor) error {
	var a opArgs
	hx, p, hy := a.t(x, "x"), a.t(positions, "positions"), a.t(y, "y")
	return a.call(func() { swig.Op_rope(hx, p, theta, inverse, hy) })
}

// Dropout computes the inverted dropout y = x * keep / (1 - p), keep drawn from a counter-based
// generator keyed by (seed, offset + element index), the same on CPU and CUDA. The backward is the
// same call on dy. y may be x.
func Dropout(x *Tensor, p float32, seed, offset uint64, y *Tensor) error {
	var a opArgs
	hx, hy := a.t(x, "x"), a.t(y, "y")
	return a.call(func() { swig.Op_dropout(hx, p, seed, offset, hy) })
}

// ---- GEMM, attention, quantization ---------------------------------------------------------------

// Gemm computes C[M, N] = epilogue(alpha * op(A) op(B) + beta * C), row-major. 3-D A, B and C are a
// batch (B may be 2-D and shared). A and B: f32, f16 or bf16, the same; C: their dtype or f32; bias
// [N] (optional): C's dtype. opts nil: the defaults.
func Gemm(a, b, bias, c *Tensor, opts *GemmOptions) error {
	var args opArgs
	ha, hb, hbias, hc := args.t(a, "a"), args.t(b, "b"), args.t(bias, "bias"), args.t(c, "c")
	var raw swig.GemmOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteGemmOptions(raw)
	}
	return args.call(func() { swig.Op_gemm(ha, hb, hbias, hc, raw) })
}

// Attention computes scaled dot-product attention, flash-style: q and o [B, S, Hq, D], k and v [B,
// S_kv, Hkv, D] (Hq a multiple of Hkv: grouped-query heads); lse [B, Hq, S] f32 (optional) receives
// each query row's log-sum-exp for the backward.
func Attention(q, k, v, o, lse *Tensor, opts *AttnOptions) error {
	var a opArgs
	hq, hk, hv, ho, hl := a.t(q, "q"), a.t(k, "k"), a.t(v, "v"), a.t(o, "o"), a.t(lse, "lse")
	var raw swig.AttnOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteAttnOptions(raw)
	}
	return a.call(func() { swig.Op_attention(hq, hk, hv, ho, hl, raw) })
}

// AttentionBackward computes dq, dk, dv (overwritten, shapes of q, k, v) from dout, the forward's o
// and lse, with the forward's options.
func AttentionBackward(q, k, v, o, dout, lse, dq, dk, dv *Tensor, opts *AttnOptions) error {
	var a opArgs
	hq, hk, hv, ho := a.t(q, "q"), a.t(k, "k"), a.t(v, "v"), a.t(o, "o")
	g, hl := a.t(dout, "dout"), a.t(lse, "lse")
	hdq, hdk, hdv := a.t(dq, "dq"), a.t(dk, "dk"), a.t(dv, "dv")
	var raw swig.AttnOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteAttnOptions(raw)
	}
	return a.call(func() { swig.Op_attention_backward(hq, hk, hv, ho, g, hl, hdq, hdk, hdv, raw) })
}

// Quantize quantizes x[N, K] group-wise. 8 bits: q is i8 [N, K] (symmetric, -127..127) or u8
// (asymmetric, 0..255); 4 bits: q is u8 [N, K/2], the even element in the low nibble (symmetric
// values stored +8). scales [N, K/group] f32; zeros [N, K/group] f32 for asymmetric only (else
// nil): x ~ q * scale (+ zero).
func Quantize(x, q, scales, zeros *Tensor, opts *QuantOptions) error {
	var a opArgs
	hx, hq, s, z := a.t(x, "x"), a.t(q, "q"), a.t(scales, "scales"), a.t(zeros, "zeros")
	var raw swig.QuantOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteQuantOptions(raw)
	}
	return a.call(func() { swig.Op_quantize(hx, hq, s, z, raw) })
}

// Dequantize computes y[N, K] from q, scales and zeros as Quantize made them (same options).
func Dequantize(q, scales, zeros, y *Tensor, opts *QuantOptions) error {
	var a opArgs
	hq, s, z, hy := a.t(q, "q"), a.t(scales, "scales"), a.t(zeros, "zeros"), a.t(y, "y")
	var raw swig.QuantOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteQuantOptions(raw)
	}
	return a.call(func() { swig.Op_dequantize(hq, s, z, hy, raw) })
}

// GemmWQ is the weight-only quantized linear y[M, N] = x[M, K] dequant(wq)^T (+ bias[N]), with wq,
// scales and zeros as Quantize made them from an [N, K] weight.
func GemmWQ(x, wq, scales, zeros, bias, y *Tensor, opts *QuantOptions) error {
	var a opArgs
	hx, w, s, z := a.t(x, "x"), a.t(wq, "wq"), a.t(scales, "scales"), a.t(zeros, "zeros")
	hb, hy := a.t(bias, "bias"), a.t(y, "y")
	var raw swig.QuantOptions
	if opts != nil {
		raw = opts.native()
		defer swig.DeleteQuantOptions(raw)
	}
	return a.call(func() { swig.Op_gemm_wq(hx, w, s, z, hb, hy, raw) })
}
