package dsabi_test

// The op layer against references computed with plain loops on random data (CPU tensors). ctest
// runs these as go_ops (-run ^TestOps); go_test runs the rest of the package.

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	dsabi "github.com/dsabi/dsabi-go"
	"github.com/dsabi/dsabi-go/internal/swig"
)

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func floats(t *testing.T, x *dsabi.Tensor) []float32 {
	t.Helper()
	v, err := dsabi.ToSlice[float32](x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// assertClose fails unless |got - want| <= atol + rtol |want| everywhere.
func assertClose(t *testing.T, what string, want []float64, got []float32, rtol, atol float64) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		tol := atol + rtol*math.Abs(want[i])
		if !(math.Abs(want[i]-float64(got[i])) <= tol) {
			t.Fatalf("%s[%d] = %g, want %g +- %g", what, i, got[i], want[i], tol)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpsConstantsMatchTheHeader(t *testing.T) {
	pairs := []struct {
		name      string
		got, want int
	}{
		{"CPUISAScalar", int(dsabi.CPUISAScalar), int(swig.DS_CPU_ISA_SCALAR)},
		{"CPUISAAVX2", int(dsabi.CPUISAAVX2), int(swig.DS_CPU_ISA_AVX2)},
		{"CPUISAAVX512", int(dsabi.CPUISAAVX512), int(swig.DS_CPU_ISA_AVX512)},
		{"OptimAdam", int(dsabi.OptimAdam), int(swig.DS_OPTIM_ADAM)},
		{"OptimAdamW", int(dsabi.OptimAdamW), int(swig.DS_OPTIM_ADAMW)},
		{"OptimLAMB", int(dsabi.OptimLAMB), int(swig.DS_OPTIM_LAMB)},
		{"OptimLion", int(dsabi.OptimLion), int(swig.DS_OPTIM_LION)},
		{"OptimSGD", int(dsabi.OptimSGD), int(swig.DS_OPTIM_SGD)},
		{"OptimAdagrad", int(dsabi.OptimAdagrad), int(swig.DS_OPTIM_ADAGRAD)},
		{"ActGELUTanh", int(dsabi.ActGELUTanh), int(swig.DS_ACT_GELU_TANH)},
		{"ActGELU", int(dsabi.ActGELU), int(swig.DS_ACT_GELU)},
		{"ActSiLU", int(dsabi.ActSiLU), int(swig.DS_ACT_SILU)},
		{"ActReLU", int(dsabi.ActReLU), int(swig.DS_ACT_RELU)},
		{"EpilogueNone", int(dsabi.EpilogueNone), int(swig.DS_EPILOGUE_NONE)},
		{"EpilogueBias", int(dsabi.EpilogueBias), int(swig.DS_EPILOGUE_BIAS)},
		{"EpilogueGELU", int(dsabi.EpilogueGELU), int(swig.DS_EPILOGUE_GELU)},
		{"EpilogueBiasGELU", int(dsabi.EpilogueBiasGELU), int(swig.DS_EPILOGUE_BIAS_GELU)},
	}
	for _, p := range pairs {
		if p.got != p.want {
			t.Errorf("%s = %d, dsabi.h says %d", p.name, p.got, p.want)
		}
	}
}

func TestOpsCPUISAAndThreads(t *testing.T) {
	current, err := dsabi.GetCPUISA() // the CPU's best, or what DSABI_CPU_ISA chose
	must(t, err)
	t.Cleanup(func() { dsabi.SetCPUISA(current) })
	supported := 0
	for _, isa := range []dsabi.CPUISA{dsabi.CPUISAScalar, dsabi.CPUISAAVX2, dsabi.CPUISAAVX512} {
		if err := dsabi.SetCPUISA(isa); err != nil {
			if !errors.Is(err, dsabi.ErrUnsupported) {
				t.Errorf("SetCPUISA(%v): %v, want nil or ErrUnsupported", isa, err)
			}
			continue
		}
		if got, err := dsabi.GetCPUISA(); err != nil || got != isa {
			t.Errorf("after SetCPUISA(%v): %v, %v", isa, got, err)
		}
		if int(isa) != supported {
			t.Errorf("%v is supported but a lower set is not", isa)
		}
		supported++
	}
	must(t, dsabi.SetCPUISA(current))
	if int(current) >= supported {
		t.Errorf("the current set %v is not among the %d supported ones", current, supported)
	}
	if dsabi.CPUISAAVX2.String() != "avx2" || dsabi.CPUISA(7).String() != "CPUISA(7)" {
		t.Errorf("String() = %q, %q", dsabi.CPUISAAVX2.String(), dsabi.CPUISA(7).String())
	}

	n, err := dsabi.GetNumThreads()
	must(t, err)
	t.Cleanup(func() { dsabi.SetNumThreads(0) })
	must(t, dsabi.SetNumThreads(2))
	if got, err := dsabi.GetNumThreads(); err != nil || got != 2 {
		t.Errorf("after SetNumThreads(2): %d, %v", got, err)
	}
	must(t, dsabi.SetNumThreads(0))
	if got, err := dsabi.GetNumThreads(); err != nil || got != n {
		t.Errorf("after SetNumThreads(0): %d, %v; want the default %d", got, err, n)
	}
}

func TestOpsDefaultOptions(t *testing.T) {
	adamw := dsabi.DefaultOptimOptions(dsabi.OptimAdamW)
	if adamw.Kind != dsabi.OptimAdamW || adamw.LR != 1e-3 || adamw.Beta1 != 0.9 || adamw.Beta2 != 0.999 ||
		adamw.Eps != 1e-8 || adamw.WeightDecay != 1e-2 || !adamw.BiasCorrection || !adamw.CheckFinite ||
		adamw.GradScale != 1 {
		t.Errorf("AdamW defaults: %+v", adamw)
	}
	if sgd := dsabi.DefaultOptimOptions(dsabi.OptimSGD); sgd.Momentum != 0 || sgd.Nesterov || sgd.Dampening != 0 {
		t.Errorf("SGD defaults: %+v", sgd)
	}
	if lamb := dsabi.DefaultOptimOptions(dsabi.OptimLAMB); lamb.MaxCoeff != 10 || lamb.MinCoeff != 0.01 {
		t.Errorf("LAMB defaults: %+v", lamb)
	}
	if g := dsabi.DefaultGemmOptions(); g.Alpha != 1 || g.Beta != 0 || g.Epilogue != dsabi.EpilogueNone || g.TransA {
		t.Errorf("Gemm defaults: %+v", g)
	}
	if a := dsabi.DefaultAttnOptions(); a.Scale != 0 {
		t.Errorf("Attn defaults: %+v", a)
	}
	if q := dsabi.DefaultQuantOptions(); q.GroupSize != 128 || (q.Bits != 8 && q.Bits != 4) {
		t.Errorf("Quant defaults: %+v", q)
	}
}

func TestOpsAdamWStep(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	sizes := []int{7, 33, 1}
	var params, grads, m, v []*dsabi.Tensor
	rp, rm, rv, g := make([][]float64, len(sizes)), make([][]float64, len(sizes)), make([][]float64, len(sizes)),
		make([][]float32, len(sizes))
	for i, n := range sizes {
		p0 := randn(r, n)
		g[i] = randn(r, n)
		params = append(params, fromSlice(t, p0))
		grads = append(grads, fromSlice(t, g[i]))
		m = append(m, newTensor(t, dsabi.DTypeF32, int64(n)))
		v = append(v, newTensor(t, dsabi.DTypeF32, int64(n)))
		rp[i], rm[i], rv[i] = make([]float64, n), make([]float64, n), make([]float64, n)
		for j := range p0 {
			rp[i][j] = float64(p0[j])
		}
	}
	opts := dsabi.DefaultOptimOptions(dsabi.OptimAdamW)
	opts.LR, opts.Beta1, opts.Beta2, opts.WeightDecay = 1e-2, 0.9, 0.95, 0.1
	lr, b1, b2, eps, wd := float64(opts.LR), float64(opts.Beta1), float64(opts.Beta2), float64(opts.Eps), float64(opts.WeightDecay)
	for step := 1; step <= 3; step++ {
		skipped, err := dsabi.OptimStep(&opts, int64(step), params, grads, m, v, nil)
		if err != nil || skipped {
			t.Fatalf("step %d: skipped %v, %v", step, skipped, err)
		}
		for i := range sizes {
			for j := range rp[i] {
				gj := float64(g[i][j])
				rm[i][j] = b1*rm[i][j] + (1-b1)*gj
				rv[i][j] = b2*rv[i][j] + (1-b2)*gj*gj
				rp[i][j] *= 1 - lr*wd
				denom := math.Sqrt(rv[i][j])/math.Sqrt(1-math.Pow(b2, float64(step))) + eps
				rp[i][j] -= lr / (1 - math.Pow(b1, float64(step))) * rm[i][j] / denom
			}
		}
	}
	for i := range sizes {
		assertClose(t, "param", rp[i], floats(t, params[i]), 1e-5, 1e-6)
		assertClose(t, "exp_avg", rm[i], floats(t, m[i]), 1e-5, 1e-6)
		assertClose(t, "exp_avg_sq", rv[i], floats(t, v[i]), 1e-5, 1e-6)
	}

	// A non-finite gradient skips the step and writes nothing.
	before := floats(t, params[1])
	bad := append([]float32(nil), g[1]...)
	bad[5] = float32(math.Inf(1))
	must(t, dsabi.SetSlice(grads[1], bad))
	skipped, err := dsabi.OptimStep(&opts, 4, params, grads, m, v, nil)
	if err != nil || !skipped {
		t.Fatalf("a step with inf: skipped %v, %v", skipped, err)
	}
	assertClose(t, "param after a skipped step", f64(before), floats(t, params[1]), 0, 0)
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestOpsGlobalNormScaleNonfinite(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	a, b := randn(r, 5), randn(r, 1001)
	sum := 0.0
	for _, x := range append(append([]float32(nil), a...), b...) {
		sum += float64(x) * float64(x)
	}
	ta, tb := fromSlice(t, a), fromSlice(t, b, 7, 143)
	norm, err := dsabi.GlobalNorm(ta, tb)
	if err != nil || math.Abs(norm-math.Sqrt(sum)) > 1e-6*math.Sqrt(sum) {
		t.Errorf("GlobalNorm = %v, %v; want %v", norm, err, math.Sqrt(sum))
	}
	if found, err := dsabi.FindNonfinite(ta, tb); err != nil || found {
		t.Errorf("FindNonfinite = %v, %v; want false", found, err)
	}
	must(t, dsabi.Scale(-2, ta))
	want := make([]float64, len(a))
	for i := range a {
		want[i] = -2 * float64(a[i])
	}
	assertClose(t, "scaled", want, floats(t, ta), 0, 0)
	b[77] = float32(math.NaN())
	must(t, dsabi.SetSlice(tb, b))
	if found, err := dsabi.FindNonfinite(ta, tb); err != nil || !found {
		t.Errorf("FindNonfinite with a nan = %v, %v; want true", found, err)
	}
}

func TestOpsCastRoundsToNearestEven(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	x := randn(r, 37)
	x[0], x[1] = 1.00390625, 1.01171875 // ties: round to the even bf16 (1.0 and 1.015625)
	src := fromSlice(t, x)
	bf := newTensor(t, dsabi.DTypeBF16, 37)
	must(t, dsabi.Cast(src, bf, 1))
	raw, err := bf.Bytes()
	must(t, err)
	for i, v := range x {
		u := uint64(math.Float32bits(v))
		want := uint16((u + 0x7fff + ((u >> 16) & 1)) >> 16)
		if got := binary.LittleEndian.Uint16(raw[2*i:]); got != want {
			t.Errorf("bf16(%g) = %#04x, want %#04x", v, got, want)
		}
	}
	wide := newTensor(t, dsabi.DTypeF64, 37)
	must(t, dsabi.Cast(src, wide, 2))
	got, err := dsabi.ToSlice[float64](wide)
	must(t, err)
	for i, v := range x {
		if got[i] != 2*float64(v) {
			t.Errorf("f64[%d] = %g, want %g", i, got[i], 2*float64(v))
		}
	}
}

func TestOpsLayerNorm(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	const n, d = 4, 33
	x, w, b := randn(r, n*d), randn(r, d), randn(r, d)
	want, wantRstd := make([]float64, n*d), make([]float64, n)
	for row := 0; row < n; row++ {
		mean, variance := 0.0, 0.0
		for i := 0; i < d; i++ {
			mean += float64(x[row*d+i])
		}
		mean /= d
		for i := 0; i < d; i++ {
			dev := float64(x[row*d+i]) - mean
			variance += dev * dev
		}
		rstd := 1 / math.Sqrt(variance/d+1e-5)
		wantRstd[row] = rstd
		for i := 0; i < d; i++ {
			want[row*d+i] = (float64(x[row*d+i])-mean)*rstd*float64(w[i]) + float64(b[i])
		}
	}
	y, rstd := newTensor(t, dsabi.DTypeF32, n, d), newTensor(t, dsabi.DTypeF32, n)
	must(t, dsabi.LayerNorm(fromSlice(t, x, n, d), fromSlice(t, w), fromSlice(t, b), 1e-5, y, nil, rstd))
	assertClose(t, "y", want, floats(t, y), 1e-4, 1e-5)
	assertClose(t, "rstd", wantRstd, floats(t, rstd), 1e-4, 1e-6)
}

func activate(act dsabi.Act, x float64) float64 {
	switch act {
	case dsabi.ActGELUTanh:
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case dsabi.ActGELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case dsabi.ActSiLU:
		return x / (1 + math.Exp(-x))
	}
	return math.Max(x, 0)
}

func TestOpsActivations(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	x := randn(r, 64)
	for i := range x {
		x[i] *= 3
	}
	for _, act := range []dsabi.Act{dsabi.ActGELUTanh, dsabi.ActGELU, dsabi.ActSiLU, dsabi.ActReLU} {
		want := make([]float64, len(x))
		for i, v := range x {
			want[i] = activate(act, float64(v))
		}
		tx, y := fromSlice(t, x), newTensor(t, dsabi.DTypeF32, int64(len(x)))
		must(t, dsabi.Activation(act, tx, y))
		assertClose(t, "activation", want, floats(t, y), 1e-5, 1e-6)
		must(t, dsabi.Activation(act, tx, tx)) // y may alias x
		assertClose(t, "activation in place", want, floats(t, tx), 1e-5, 1e-6)
	}
}

func TestOpsSoftmaxCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	const n, v = 3, 11
	logits := randn(r, n*v)
	targets := []int64{4, -100, 10}
	soft, losses, grads := make([]float64, n*v), make([]float64, n), make([]float64, n*v)
	for row := 0; row < n; row++ {
		mx := math.Inf(-1)
		for i := 0; i < v; i++ {
			mx = math.Max(mx, float64(logits[row*v+i]))
		}
		sum := 0.0
		for i := 0; i < v; i++ {
			sum += math.Exp(float64(logits[row*v+i]) - mx)
		}
		lse := math.Log(sum) + mx
		for i := 0; i < v; i++ {
			soft[row*v+i] = math.Exp(float64(logits[row*v+i]) - lse)
		}
		if tgt := targets[row]; tgt != -100 {
			losses[row] = lse - float64(logits[row*v+int(tgt)])
			for i := 0; i < v; i++ {
				onehot := 0.0
				if int64(i) == tgt {
					onehot = 1
				}
				grads[row*v+i] = (soft[row*v+i] - onehot) / n
			}
		}
	}
	tl := fromSlice(t, logits, n, v)
	y := newTensor(t, dsabi.DTypeF32, n, v)
	must(t, dsabi.Softmax(tl, 1, y))
	assertClose(t, "softmax", soft, floats(t, y), 1e-5, 1e-6)
	loss, dl := newTensor(t, dsabi.DTypeF32, n), newTensor(t, dsabi.DTypeF32, n, v)
	must(t, dsabi.CrossEntropy(tl, fromSlice(t, targets), -100, 1.0/n, loss, dl))
	assertClose(t, "losses", losses, floats(t, loss), 1e-5, 1e-5)
	assertClose(t, "dlogits", grads, floats(t, dl), 1e-4, 1e-6)
}

func TestOpsGemm(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	const m, k, n = 5, 19, 7
	a, w, bias, c0 := randn(r, m*k), randn(r, n*k), randn(r, n), randn(r, m*n)
	ab := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(w[j*k+p])
			}
			ab[i*n+j] = s
		}
	}
	ta, tw, c := fromSlice(t, a, m, k), fromSlice(t, w, n, k), newTensor(t, dsabi.DTypeF32, m, n)
	opts := dsabi.DefaultGemmOptions()
	opts.TransB, opts.Epilogue = true, dsabi.EpilogueBias
	must(t, dsabi.Gemm(ta, tw, fromSlice(t, bias), c, &opts))
	want := make([]float64, m*n)
	for i := range want {
		want[i] = ab[i] + float64(bias[i%n])
	}
	assertClose(t, "a w^T + bias", want, floats(t, c), 1e-4, 1e-4)

	must(t, dsabi.SetSlice(c, c0))
	opts = dsabi.DefaultGemmOptions()
	opts.TransB, opts.Alpha, opts.Beta = true, 0.5, 1
	must(t, dsabi.Gemm(ta, tw, nil, c, &opts))
	for i := range want {
		want[i] = 0.5*ab[i] + float64(c0[i])
	}
	assertClose(t, "0.5 a w^T + c", want, floats(t, c), 1e-4, 1e-4)
}

func TestOpsQuantizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	const n, k, group = 3, 64, 32
	x := randn(r, n*k)
	opts := dsabi.QuantOptions{Bits: 8, GroupSize: group, Symmetric: true}
	q, scales, y := newTensor(t, dsabi.DTypeI8, n, k), newTensor(t, dsabi.DTypeF32, n, k/group), newTensor(t, dsabi.DTypeF32, n, k)
	must(t, dsabi.Quantize(fromSlice(t, x, n, k), q, scales, nil, &opts))
	must(t, dsabi.Dequantize(q, scales, nil, y, &opts))
	qs, err := dsabi.ToSlice[int8](q)
	must(t, err)
	s, back := floats(t, scales), floats(t, y)
	for i := range x {
		scale := float64(s[(i/k)*(k/group)+(i%k)/group])
		if qs[i] < -127 {
			t.Fatalf("q[%d] = %d is outside -127..127", i, qs[i])
		}
		if math.Abs(float64(qs[i])*scale-float64(back[i])) > 1e-6*math.Abs(float64(back[i]))+1e-7 {
			t.Fatalf("y[%d] = %g, but q * scale = %g", i, back[i], float64(qs[i])*scale)
		}
		if math.Abs(float64(x[i])-float64(back[i])) > scale*0.5001+1e-6 {
			t.Fatalf("x[%d] = %g came back as %g (scale %g)", i, x[i], back[i], scale)
		}
	}
}

func TestOpsAttention(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	const s, skv, hq, hkv, d = 3, 4, 2, 1, 8
	q, k, v := randn(r, s*hq*d), randn(r, skv*hkv*d), randn(r, skv*hkv*d)
	scale := 1 / math.Sqrt(d)
	want, wantLse := make([]float64, s*hq*d), make([]float64, hq*s)
	for h := 0; h < hq; h++ {
		kh := h / (hq / hkv)
		for i := 0; i < s; i++ {
			scores := make([]float64, skv)
			mx := math.Inf(-1)
			for j := 0; j < skv; j++ {
				if j > i+(skv-s) {
					scores[j] = math.Inf(-1)
					continue
				}
				dot := 0.0
				for e := 0; e < d; e++ {
					dot += float64(q[(i*hq+h)*d+e]) * float64(k[(j*hkv+kh)*d+e])
				}
				scores[j] = dot * scale
				mx = math.Max(mx, scores[j])
			}
			sum := 0.0
			for j := range scores {
				sum += math.Exp(scores[j] - mx)
			}
			wantLse[h*s+i] = math.Log(sum) + mx
			for e := 0; e < d; e++ {
				o := 0.0
				for j := range scores {
					o += math.Exp(scores[j]-mx) / sum * float64(v[(j*hkv+kh)*d+e])
				}
				want[(i*hq+h)*d+e] = o
			}
		}
	}
	o, lse := newTensor(t, dsabi.DTypeF32, 1, s, hq, d), newTensor(t, dsabi.DTypeF32, 1, hq, s)
	must(t, dsabi.Attention(fromSlice(t, q, 1, s, hq, d), fromSlice(t, k, 1, skv, hkv, d), fromSlice(t, v, 1, skv, hkv, d),
		o, lse, &dsabi.AttnOptions{Causal: true}))
	assertClose(t, "o", want, floats(t, o), 1e-4, 1e-5)
	assertClose(t, "lse", wantLse, floats(t, lse), 1e-5, 1e-5)
}

func TestOpsErrorsNameTheArgument(t *testing.T) {
	x, w, y := newTensor(t, dsabi.DTypeF32, 4, 8), newTensor(t, dsabi.DTypeF32, 9), newTensor(t, dsabi.DTypeF32, 4, 8)
	err := dsabi.LayerNorm(x, w, nil, 1e-5, y, nil, nil)
	var dsErr *dsabi.Error
	if !errors.As(err, &dsErr) || dsErr.Code != dsabi.StatusInvalidArg {
		t.Fatalf("LayerNorm with a [9] weight for D = 8: %v, want StatusInvalidArg", err)
	}
	if !strings.Contains(dsErr.Msg, "weight") || !strings.Contains(dsErr.Msg, "[9]") {
		t.Errorf("the message does not name the argument and its shape: %q", dsErr.Msg)
	}
	closed, err := dsabi.NewTensor(dsabi.DTypeF32, dsabi.CPU, 3)
	must(t, err)
	closed.Close()
	if err := dsabi.Scale(2, closed); !errors.Is(err, dsabi.ErrInvalidHandle) || !strings.Contains(err.Error(), "tensors[0]") {
		t.Errorf("Scale on a closed tensor: %v, want ErrInvalidHandle naming tensors[0]", err)
	}
}
