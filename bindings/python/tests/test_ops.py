"""dsabi.ops: every op against a NumPy reference on random data (CPU), the options and their
defaults, output allocation, zero-copy arguments, the CPU ISA / thread settings and errors."""

import math
import re

import numpy as np
import pytest

import dsabi
from dsabi import DType, ops

RTOL, ATOL = 1e-5, 1e-6  # f32 kernels against float64 references


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (finite values)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ---- CPU ISA and threads ------------------------------------------------------------------------


def test_cpu_isa_get_set():
    current = ops.get_cpu_isa()  # the CPU's best, or what $DSABI_CPU_ISA chose
    assert isinstance(current, ops.CpuIsa)
    supported = []
    try:
        for isa in ops.CpuIsa:
            try:
                ops.set_cpu_isa(isa.name.lower())
            except dsabi.UnsupportedError as e:
                assert e.value.code == dsabi.Status.UNSUPPORTED
                assert isa.name.lower() in e.value.message
                continue
            assert ops.get_cpu_isa() == isa
            supported.append(isa)
    finally:
        ops.set_cpu_isa(current)
    assert ops.get_cpu_isa() == current
    # Scalar always works, and every set below the CPU's best does.
    assert supported == list(ops.CpuIsa)[: len(supported)] and current in supported
    with pytest.raises(ValueError, match="unknown CpuIsa"):
        ops.set_cpu_isa("sse9")


def test_num_threads_get_set():
    default = ops.get_num_threads()
    assert default >= 1
    try:
        ops.set_num_threads(3)
        assert ops.get_num_threads() == 3
        ops.set_num_threads(1)
        assert ops.get_num_threads() == 1
    finally:
        ops.set_num_threads(0)  # back to the default
    assert ops.get_num_threads() == default
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.set_num_threads(-2)
    assert e.value.code == dsabi.Status.INVALID_ARG


# ---- options ------------------------------------------------------------------------------------


def test_optimizer_defaults_follow_torch():
    adamw = ops.OptimOptions.defaults("adamw")
    assert adamw.kind == ops.OptimKind.ADAMW
    assert (adamw.lr, adamw.beta1, adamw.beta2, adamw.weight_decay) == pytest.approx((1e-3, 0.9, 0.999, 1e-2))
    assert adamw.eps == pytest.approx(1e-8)
    assert adamw.bias_correction is True and adamw.check_finite is True
    assert adamw.grad_scale == 1.0
    adam = ops.OptimOptions.defaults(ops.OptimKind.ADAM)
    assert adam.weight_decay == 0.0 and adam.lr == pytest.approx(1e-3)
    adagrad = ops.OptimOptions.defaults("adagrad")
    assert (adagrad.lr, adagrad.lr_decay, adagrad.weight_decay) == pytest.approx((1e-2, 0.0, 0.0))
    assert adagrad.eps == pytest.approx(1e-10)
    sgd = ops.OptimOptions.defaults("sgd")
    assert (sgd.momentum, sgd.dampening, sgd.nesterov, sgd.weight_decay) == (0.0, 0.0, False, 0.0)
    lamb = ops.OptimOptions.defaults("lamb")
    assert (lamb.max_coeff, lamb.min_coeff) == pytest.approx((10.0, 0.01))


def test_other_option_defaults():
    gemm = ops.GemmOptions.defaults()
    assert (gemm.alpha, gemm.beta, gemm.epilogue) == (1.0, 0.0, ops.Epilogue.NONE)
    assert gemm.trans_a is False
    attn = ops.AttnOptions.defaults()
    assert attn.scale == 0.0 and attn.causal in (False, True)
    quant = ops.QuantOptions.defaults()
    assert quant.group_size == 128 and quant.bits in (4, 8)


def test_option_objects_and_keywords_combine():
    raw = ops.OptimOptions(kind="sgd", lr=0.5, nesterov=True)._raw(momentum=0.9, lr=None)
    assert (raw.kind, raw.lr, raw.nesterov) == (ops.OptimKind.SGD, 0.5, 1)
    assert raw.momentum == pytest.approx(0.9)
    raw = ops.GemmOptions(trans_b=True, epilogue="bias_gelu")._raw(alpha=2.0)
    assert (raw.trans_b, raw.alpha, raw.epilogue) == (1, 2.0, ops.Epilogue.BIAS_GELU)
    with pytest.raises(TypeError, match="GemmOptions"):
        ops.gemm(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32), options=ops.AttnOptions())


# ---- optimizers ---------------------------------------------------------------------------------


def adamw_reference(p, g, m, v, step, lr, b1, b2, eps, wd, decoupled=True):
    p, g, m, v = (a.astype(np.float64) for a in (p, g, m, v))
    if not decoupled:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if decoupled:
        p = p * (1 - lr * wd)
    denom = np.sqrt(v) / math.sqrt(1 - b2**step) + eps
    p = p - lr / (1 - b1**step) * m / denom
    return p, m, v


@pytest.mark.parametrize("decoupled", [True, False])
def test_optim_step_adam(rng, decoupled):
    shapes = [(7,), (3, 33), (1,), (129,)]
    params = [randn(rng, *s) for s in shapes]
    grads = [randn(rng, *s) for s in shapes]
    m = [np.zeros(s, np.float32) for s in shapes]
    v = [np.zeros(s, np.float32) for s in shapes]
    ref = [(p.copy(), mm.copy(), vv.copy()) for p, mm, vv in zip(params, m, v)]
    kind = "adamw" if decoupled else "adam"
    hp = dict(lr=1e-2, b1=0.9, b2=0.95, eps=1e-8, wd=0.1)
    for step in range(1, 4):
        skipped = ops.optim_step(params, grads, m, v, step=step, kind=kind, lr=hp["lr"], betas=(hp["b1"], hp["b2"]),
                                 eps=hp["eps"], weight_decay=hp["wd"])
        assert skipped is False
        ref = [adamw_reference(p, g, mm, vv, step, decoupled=decoupled, **hp) for (p, mm, vv), g in zip(ref, grads)]
    for i in range(len(shapes)):
        close(params[i], ref[i][0])
        close(m[i], ref[i][1])
        close(v[i], ref[i][2])


def test_optim_step_skips_non_finite_and_scales(rng):
    p = randn(rng, 10)
    g = randn(rng, 10)
    m, v = np.zeros(10, np.float32), np.zeros(10, np.float32)
    p0 = p.copy()
    bad = g.copy()
    bad[3] = np.inf
    assert ops.optim_step([p], [bad], [m], [v], step=1, lr=0.1) is True
    assert (p == p0).all() and (m == 0).all() and (v == 0).all()
    # grad_scale multiplies the gradients first: grads * 0.5 == (grads / 2) with scale 1.
    opts = ops.OptimOptions(kind="adamw", lr=0.1, weight_decay=0.0, grad_scale=0.5)
    assert ops.optim_step(p, g, m, v, step=1, options=opts) is False
    expected, em, ev = adamw_reference(p0, g * 0.5, np.zeros(10), np.zeros(10), 1, 0.1, 0.9, 0.999, 1e-8, 0.0)
    close(p, expected)
    close(m, em)
    close(v, ev)


def test_optim_step_params_lp_and_f16_grads(rng):
    p = randn(rng, 257)
    g16 = randn(rng, 257, dtype=np.float16)
    m, v = np.zeros(257, np.float32), np.zeros(257, np.float32)
    lp = np.zeros(257, np.float16)
    ref_p, _, _ = adamw_reference(p, g16.astype(np.float32), m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.01)
    assert not ops.optim_step(p, g16, m, v, lp, step=1)  # AdamW defaults
    close(p, ref_p)
    assert (lp == p.astype(np.float16)).all()


def test_optim_step_sgd_and_adagrad(rng):
    p = randn(rng, 31)
    g = randn(rng, 31)
    buf = np.zeros(31, np.float32)
    ref_p, ref_buf = p.astype(np.float64), None
    for step in (1, 2):
        ops.optim_step(p, g, buf, step=step, kind="sgd", lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
        d = g + 0.01 * ref_p
        ref_buf = d if ref_buf is None else 0.9 * ref_buf + 0.9 * d
        ref_p = ref_p - 0.1 * ref_buf
    close(p, ref_p)
    close(buf, ref_buf)

    p = randn(rng, 31)
    total = np.zeros(31, np.float32)
    ref_p, ref_sum = p.astype(np.float64), np.zeros(31)
    for step in (1, 2, 3):
        ops.optim_step(p, g, total, step=step, kind="adagrad", lr=0.1, lr_decay=0.01, weight_decay=0.1, eps=1e-10)
        d = g + 0.1 * ref_p
        ref_sum = ref_sum + d * d
        ref_p = ref_p - 0.1 / (1 + (step - 1) * 0.01) * d / (np.sqrt(ref_sum) + 1e-10)
    close(p, ref_p)
    close(total, ref_sum)


# ---- reductions, scale, cast --------------------------------------------------------------------


def test_global_norm(rng):
    xs = [randn(rng, 5), randn(rng, 3, 17), randn(rng, 1001)]
    expected = math.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in xs))
    norm = ops.global_norm(xs)
    assert isinstance(norm, float)
    assert norm == pytest.approx(expected, rel=1e-6)
    assert ops.global_norm(xs[2]) == pytest.approx(float(np.linalg.norm(xs[2].astype(np.float64))), rel=1e-6)
    halves = [x.astype(np.float16) for x in xs]
    expected16 = math.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in halves))
    assert ops.global_norm(halves) == pytest.approx(expected16, rel=1e-6)
    xs[1][2, 3] = np.nan
    assert not math.isfinite(ops.global_norm(xs))


def test_find_nonfinite(rng):
    xs = [randn(rng, 9), randn(rng, 40)]
    assert ops.find_nonfinite(xs) is False
    xs[1][39] = -np.inf
    assert ops.find_nonfinite(xs) is True
    assert ops.find_nonfinite(xs[0]) is False


def test_scale_in_place(rng):
    a, b = randn(rng, 7), randn(rng, 2, 65)
    a0, b0 = a.copy(), b.copy()
    assert ops.scale([a, b], 0.25) is None
    close(a, a0.astype(np.float64) * 0.25)
    close(b, b0.astype(np.float64) * 0.25)


def test_cast(rng):
    x = randn(rng, 4, 37) * 100
    h = ops.cast(x, np.empty((4, 37), np.float16))
    assert (h == x.astype(np.float16)).all()  # round to nearest even, as NumPy
    doubled = ops.cast(x, np.empty((4, 37), np.float64), scale=2.0)
    close(doubled, x.astype(np.float64) * 2)
    back = ops.cast(h, np.empty((4, 37), np.float32))
    assert (back == h.astype(np.float32)).all()
    bf = dsabi.Tensor.create((4, 37), DType.BF16)
    ops.cast(x, bf)
    assert (bf.numpy() == bf16_bits(x)).all()
    # FP8 saturates to the largest finite value, keeps nan and represents small values exactly.
    special = np.array([1000.0, -1000.0, 0.5, 1.5, -3.5, 0.0, np.nan], np.float32)
    e4m3 = dsabi.Tensor.create(special.shape, DType.FP8_E4M3)
    ops.cast(special, e4m3)
    out = ops.cast(e4m3, np.empty_like(special))
    assert out[:6].tolist() == [448.0, -448.0, 0.5, 1.5, -3.5, 0.0] and np.isnan(out[6])
    e5m2 = dsabi.Tensor.create(special.shape, DType.FP8_E5M2)
    ops.cast(special * 1000, e5m2)
    out = ops.cast(e5m2, np.empty_like(special))
    assert out[:2].tolist() == [57344.0, -57344.0] and np.isnan(out[6])


# ---- transformer ops ----------------------------------------------------------------------------


def test_embedding_and_backward(rng):
    weight = randn(rng, 11, 6)
    for idtype in (np.int32, np.int64):
        ids = np.array([3, 0, 10, 3, 3, 7], idtype)
        out = ops.embedding(weight, ids)
        assert out.shape == (6, 6) and out.dtype == np.float32
        assert (out == weight[ids]).all()
    dout = randn(rng, 6, 6)
    flat = np.array([3, 0, 10, 3, 3, 7], np.int64)
    dweight = np.ones((11, 6), np.float32)
    ops.embedding_backward(flat, dout, dweight)
    expected = np.ones((11, 6))
    np.add.at(expected, flat, dout.astype(np.float64))
    close(dweight, expected)


def layer_norm_reference(x, w, b, eps):
    x = x.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    return (x - mean) * rstd * w + (0 if b is None else b), mean[..., 0], rstd[..., 0]


def test_layer_norm_forward_backward(rng):
    x, w, b = randn(rng, 5, 33) * 3 + 1, randn(rng, 33), randn(rng, 33)
    mean, rstd = np.empty(5, np.float32), np.empty(5, np.float32)
    y = ops.layer_norm(x, w, b, 1e-5, mean=mean, rstd=rstd)
    ry, rmean, rrstd = layer_norm_reference(x, w, b, 1e-5)
    close(y, ry, rtol=1e-4, atol=1e-5)
    close(mean, rmean)
    close(rstd, rrstd, rtol=1e-4)
    y_nobias = ops.layer_norm(x, w, eps=1e-5, y=np.empty_like(x))
    close(y_nobias, layer_norm_reference(x, w, None, 1e-5)[0], rtol=1e-4, atol=1e-5)

    dy = randn(rng, 5, 33)
    dweight, dbias = np.ones(33, np.float32), np.zeros(33, np.float32)
    dx = ops.layer_norm_backward(dy, x, w, mean, rstd, dweight=dweight, dbias=dbias)
    xhat = (x - rmean[:, None]) * rrstd[:, None]
    g = dy.astype(np.float64) * w
    rdx = rrstd[:, None] * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    close(dx, rdx, rtol=1e-4, atol=1e-5)
    close(dweight, 1 + (dy * xhat).sum(0), rtol=1e-4, atol=1e-5)
    close(dbias, dy.astype(np.float64).sum(0), rtol=1e-4, atol=1e-5)


def test_rms_norm_forward_backward(rng):
    x, w = randn(rng, 2, 3, 40), randn(rng, 40)
    rstd = np.empty(6, np.float32)
    y = ops.rms_norm(x, w, 1e-6, rstd=rstd)
    xd = x.astype(np.float64)
    rr = 1 / np.sqrt((xd**2).mean(-1, keepdims=True) + 1e-6)
    close(y, xd * rr * w, rtol=1e-4, atol=1e-5)
    close(rstd, rr.reshape(-1), rtol=1e-4)
    dy = randn(rng, 2, 3, 40)
    dweight = np.zeros(40, np.float32)
    dx = ops.rms_norm_backward(dy, x, w, rstd, dweight=dweight)
    xhat = xd * rr
    g = dy.astype(np.float64) * w
    close(dx, rr * (g - xhat * (g * xhat).mean(-1, keepdims=True)), rtol=1e-4, atol=1e-5)
    close(dweight, (dy * xhat).reshape(-1, 40).sum(0), rtol=1e-4, atol=1e-5)


_ERF = np.vectorize(math.erf)


def act_reference(name, x):
    x = x.astype(np.float64)
    if name == "gelu_tanh":
        t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
    if name == "gelu":
        cdf = 0.5 * (1 + _ERF(x / math.sqrt(2)))
        return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "silu":
        s = 1 / (1 + np.exp(-x))
        return x * s, s * (1 + x * (1 - s))
    return np.maximum(x, 0), (x > 0).astype(np.float64)


@pytest.mark.parametrize("name", ["gelu_tanh", "gelu", "silu", "relu"])
def test_activation_forward_backward(rng, name):
    x = randn(rng, 3, 50) * 3
    ref, dref = act_reference(name, x)
    close(ops.activation(name, x), ref, rtol=1e-5, atol=1e-6)
    dy = randn(rng, 3, 50)
    close(ops.activation_backward(name, x, dy), dy * dref, rtol=1e-4, atol=1e-5)
    inplace = x.copy()
    assert ops.activation(ops.Activation[name.upper()], inplace, inplace) is inplace  # y may alias x
    close(inplace, ref, rtol=1e-5, atol=1e-6)


def test_swiglu_forward_backward(rng):
    gate, up, dy = randn(rng, 4, 24), randn(rng, 4, 24), randn(rng, 4, 24)
    silu, dsilu = act_reference("silu", gate)
    close(ops.swiglu(gate, up), silu * up)
    dgate, dup = ops.swiglu_backward(gate, up, dy)
    close(dgate, dy * up * dsilu, rtol=1e-4, atol=1e-5)
    close(dup, dy * silu, rtol=1e-4, atol=1e-5)


def test_add_and_sum_rows(rng):
    a, b, bias = randn(rng, 6, 19), randn(rng, 6, 19), randn(rng, 19)
    close(ops.add(a, b), a.astype(np.float64) + b)
    close(ops.add(a, bias), a.astype(np.float64) + bias)
    dbias = np.full(19, 2.0, np.float32)
    ops.sum_rows(a, dbias)
    close(dbias, 2 + a.astype(np.float64).sum(0))


def test_softmax_forward_backward(rng):
    x = randn(rng, 7, 45) * 4
    z = x.astype(np.float64) * 0.5
    ref = np.exp(z - z.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    y = ops.softmax(x, 0.5)
    close(y, ref)
    dy = randn(rng, 7, 45)
    dx = ops.softmax_backward(y, dy, 0.5)
    close(dx, 0.5 * ref * (dy - (dy * ref).sum(-1, keepdims=True)), rtol=1e-4, atol=1e-6)


def test_cross_entropy(rng):
    n, v = 6, 37
    logits = randn(rng, n, v) * 3
    targets = rng.integers(0, v, n).astype(np.int64)
    targets[4] = -100
    z = logits.astype(np.float64)
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    ref = lse - z[np.arange(n), np.maximum(targets, 0)]
    ref[4] = 0
    dlogits = np.empty_like(logits)
    losses = ops.cross_entropy(logits, targets, dloss=1 / n, dlogits=dlogits)
    assert losses.shape == (n,) and losses.dtype == np.float32
    close(losses, ref, rtol=1e-5, atol=1e-5)
    soft = np.exp(z - lse[:, None])
    onehot = np.zeros_like(soft)
    onehot[np.arange(n), np.maximum(targets, 0)] = 1
    dref = (soft - onehot) / n
    dref[4] = 0
    close(dlogits, dref, rtol=1e-4, atol=1e-6)
    # In place (dlogits aliases logits), i32 targets, another ignore_index.
    t32 = targets.astype(np.int32)
    t32[4] = 5
    t32[2] = -1
    inplace = logits.copy()
    losses = ops.cross_entropy(inplace, t32, ignore_index=-1, dloss=1.0, dlogits=inplace)
    assert losses[2] == 0 and (inplace[2] == 0).all()
    close(losses[4], lse[4] - z[4, 5], rtol=1e-5, atol=1e-5)


def rope_reference(x, pos, theta, inverse=False):
    x = x.astype(np.float64)
    d = x.shape[-1]
    half = d // 2
    freq = theta ** (-2 * np.arange(half) / d)
    ang = pos.astype(np.float64)[:, None] * freq[None, :]  # [N, D/2]
    if inverse:
        ang = -ang
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)


def test_rope(rng):
    x = randn(rng, 5, 3, 16)
    pos = np.array([0, 1, 7, 100, 300], np.int64)
    y = ops.rope(x, pos, 10000.0)
    close(y, rope_reference(x, pos, 10000.0), rtol=1e-4, atol=2e-4)
    back = ops.rope(y, pos.astype(np.int32), 10000.0, inverse=True)
    close(back, x, rtol=1e-4, atol=2e-4)


def test_dropout(rng):
    x = randn(rng, 100, 100)
    y = ops.dropout(x, 0.25, seed=42, offset=0)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    close(y[kept], x[kept].astype(np.float64) / 0.75)
    again = ops.dropout(x, 0.25, seed=42)
    assert (again == y).all()  # same (seed, offset): same mask
    other = ops.dropout(x, 0.25, seed=43)
    assert (other != y).any()
    # offset shifts the element counter: element i with offset k is element i + k with offset 0.
    flat = x.reshape(-1)
    shifted = ops.dropout(flat[10:].copy(), 0.25, seed=42, offset=10)
    assert ((shifted != 0) == kept.reshape(-1)[10:]).all()
    assert (ops.dropout(x, 0.0, seed=1) == x).all()


# ---- GEMM ---------------------------------------------------------------------------------------


def gelu_tanh(x):
    return act_reference("gelu_tanh", x)[0]


def test_gemm(rng):
    m, k, n = 9, 33, 17
    a, w, bias = randn(rng, m, k), randn(rng, n, k), randn(rng, n)
    ref = a.astype(np.float64) @ w.T.astype(np.float64)
    c = ops.gemm(a, w, trans_b=True)
    assert c.shape == (m, n) and c.dtype == np.float32
    close(c, ref, rtol=1e-4, atol=1e-4)
    b = np.ascontiguousarray(w.T)
    close(ops.gemm(a, b), ref, rtol=1e-4, atol=1e-4)
    at = np.ascontiguousarray(a.T)
    close(ops.gemm(at, b, trans_a=True), ref, rtol=1e-4, atol=1e-4)
    # alpha and beta accumulate into the caller's C.
    c0 = randn(rng, m, n)
    c = c0.copy()
    assert ops.gemm(a, w, c, trans_b=True, alpha=0.5, beta=1.0) is c
    close(c, 0.5 * ref + c0, rtol=1e-4, atol=1e-4)
    with pytest.raises(dsabi.InvalidArgumentError, match="beta"):
        ops.gemm(a, w, trans_b=True, beta=1.0)
    # Epilogues, through an options object.
    opts = ops.GemmOptions(trans_b=True, epilogue=ops.Epilogue.BIAS)
    close(ops.gemm(a, w, bias=bias, options=opts), ref + bias, rtol=1e-4, atol=1e-4)
    close(ops.gemm(a, w, None, bias, options=opts, epilogue="bias_gelu"), gelu_tanh(ref + bias), rtol=1e-4, atol=1e-4)
    close(ops.gemm(a, w, trans_b=True, epilogue="gelu"), gelu_tanh(ref), rtol=1e-4, atol=1e-4)
    close(ops.gemm(a, w, bias=bias, trans_b=True), ref + bias, rtol=1e-4, atol=1e-4)  # a bias selects BIAS
    with pytest.raises(dsabi.InvalidArgumentError, match="bias"):
        ops.gemm(a, w, bias=bias, trans_b=True, epilogue="none")  # named explicitly: C's rule holds


def test_gemm_batched_and_half(rng):
    a, b = randn(rng, 3, 5, 8), randn(rng, 8, 6)  # shared 2-D B
    c = ops.gemm(a, b)
    assert c.shape == (3, 5, 6)
    close(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    b3 = randn(rng, 3, 6, 8)
    close(ops.gemm(a, b3, trans_b=True), a.astype(np.float64) @ b3.transpose(0, 2, 1), rtol=1e-4, atol=1e-4)
    # f16 inputs into an f32 C (f32 accumulation).
    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    c32 = ops.gemm(a16, b16, np.empty((3, 5, 6), np.float32))
    close(c32, a16.astype(np.float64) @ b16.astype(np.float64), rtol=1e-4, atol=1e-4)


# ---- quantization -------------------------------------------------------------------------------


def unpack(q: np.ndarray, bits: int, symmetric: bool) -> np.ndarray:
    """The integer values of quantize's q (see dsabi.h)."""
    if bits == 8:
        return q.astype(np.float64)
    low, high = (q & 0x0F).astype(np.int64), (q >> 4).astype(np.int64)
    values = np.stack([low, high], -1).reshape(*q.shape[:-1], q.shape[-1] * 2)
    return (values - 8 if symmetric else values).astype(np.float64)


@pytest.mark.parametrize("bits,symmetric", [(8, True), (8, False), (4, True), (4, False)])
def test_quantize_dequantize_round_trip(rng, bits, symmetric):
    n, k, group = 6, 128, 32
    x = randn(rng, n, k) * 2
    q, scales, zeros = ops.quantize(x, bits=bits, group_size=group, symmetric=symmetric)
    assert q.dtype == (np.int8 if bits == 8 and symmetric else np.uint8)
    assert q.shape == (n, k if bits == 8 else k // 2)
    assert scales.shape == (n, k // group) and scales.dtype == np.float32
    assert (zeros is None) == symmetric
    values = unpack(q, bits, symmetric)
    lo, hi = {(8, True): (-127, 127), (8, False): (0, 255), (4, True): (-7, 7), (4, False): (0, 15)}[(bits, symmetric)]
    assert values.min() >= lo and values.max() <= hi
    s = np.repeat(scales.astype(np.float64), group, -1)
    z = 0 if symmetric else np.repeat(zeros.astype(np.float64), group, -1)
    ref = values * s + z
    # Every element is within half a step of x, and dequantize computes exactly q * scale (+ zero).
    assert (np.abs(ref - x) <= s * 0.5 * (1 + 1e-3) + 1e-6).all()
    y = ops.dequantize(q, scales, zeros, bits=bits, group_size=group, symmetric=symmetric)
    assert y.shape == (n, k) and y.dtype == np.float32
    close(y, ref, rtol=1e-6, atol=1e-6)
    # Weight-only quantized linear with the same quantized weight.
    xin, bias = randn(rng, 3, k), randn(rng, n)
    opts = ops.QuantOptions(bits=bits, group_size=group, symmetric=symmetric)
    out = ops.gemm_wq(xin, q, scales, zeros, bias, options=opts)
    assert out.shape == (3, n)
    close(out, xin.astype(np.float64) @ ref.T + bias, rtol=1e-4, atol=5e-4)


# ---- attention ----------------------------------------------------------------------------------


def attention_reference(q, k, v, causal, scale):
    """o, lse and a closure for the backward; q [B, S, Hq, D], k/v [B, Skv, Hkv, D]."""
    q, k, v = (t.astype(np.float64) for t in (q, k, v))
    b, s, hq, d = q.shape
    skv, hkv = k.shape[1], k.shape[2]
    rep = hq // hkv
    kk, vv = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)  # [B, Skv, Hq, D]
    scores = np.einsum("bshd,bthd->bhst", q, kk) * scale
    if causal:
        mask = np.arange(skv)[None, :] > np.arange(s)[:, None] + (skv - s)
        scores = np.where(mask, -np.inf, scores)
    mx = scores.max(-1, keepdims=True)
    lse = np.log(np.exp(scores - mx).sum(-1)) + mx[..., 0]  # [B, Hq, S]
    p = np.exp(scores - lse[..., None])
    o = np.einsum("bhst,bthd->bshd", p, vv)

    def backward(do):
        do = do.astype(np.float64)
        dv = np.einsum("bhst,bshd->bthd", p, do)
        dp = np.einsum("bshd,bthd->bhst", do, vv)
        delta = (do * o).sum(-1).transpose(0, 2, 1)[..., None]  # [B, Hq, S, 1]
        ds = p * (dp - delta) * scale
        dq = np.einsum("bhst,bthd->bshd", ds, kk)
        dk = np.einsum("bhst,bshd->bthd", ds, q)
        fold = lambda t: t.reshape(b, skv, hkv, rep, d).sum(3)  # noqa: E731 - grouped heads add up
        return dq, fold(dk), fold(dv)

    return o, lse, backward


@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_backward(rng, causal):
    b, s, skv, hq, hkv, d = 2, 5, 7, 4, 2, 16
    q, k, v = randn(rng, b, s, hq, d), randn(rng, b, skv, hkv, d), randn(rng, b, skv, hkv, d)
    scale = 1 / math.sqrt(d)
    ro, rlse, backward = attention_reference(q, k, v, causal, scale)
    lse = np.empty((b, hq, s), np.float32)
    o = ops.attention(q, k, v, lse=lse, causal=causal)
    assert o.shape == q.shape
    close(o, ro, rtol=1e-4, atol=1e-5)
    close(lse, rlse, rtol=1e-5, atol=1e-5)
    # An explicit scale (here 1/sqrt(D) again) gives the same.
    close(ops.attention(q, k, v, options=ops.AttnOptions(causal=causal, scale=scale)), ro, rtol=1e-4, atol=1e-5)

    dout = randn(rng, b, s, hq, d)
    dq, dk, dv = ops.attention_backward(q, k, v, o, dout, lse, causal=causal)
    rdq, rdk, rdv = backward(dout)
    close(dq, rdq, rtol=1e-4, atol=1e-4)
    close(dk, rdk, rtol=1e-4, atol=1e-4)
    close(dv, rdv, rtol=1e-4, atol=1e-4)


# ---- arguments: dsabi tensors, torch, allocation ------------------------------------------------


def test_dsabi_tensors_and_read_only_inputs(rng):
    x = randn(rng, 4, 8)
    xt = dsabi.Tensor.from_numpy(x.copy())
    yt = dsabi.Tensor.create((4, 8))
    assert ops.softmax(xt, 1.0, yt) is yt
    out = ops.softmax(xt)  # allocated like a dsabi.Tensor input: a dsabi.Tensor on its device
    assert isinstance(out, dsabi.Tensor) and out.device == xt.device
    ro = x.copy()
    ro.flags.writeable = False
    close(ops.softmax(ro), yt.numpy())  # inputs may be read-only
    with pytest.raises(dsabi.InvalidArgumentError, match="read-only"):
        ops.softmax(x, 1.0, ro)  # outputs may not


def test_torch_tensors_zero_copy(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (python3-torch)")
    x = torch.randn(6, 10)
    w = torch.randn(10, requires_grad=True)  # detached for the call
    y = ops.rms_norm(x, w)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape and y.dtype == torch.float32
    ref = x.double() * torch.rsqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-6) * w.detach().double()
    close(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    out = torch.empty(6, 10)
    assert ops.rms_norm(x, w, y=out) is out
    close(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    a, b = torch.randn(4, 12, dtype=torch.bfloat16), torch.randn(5, 12, dtype=torch.bfloat16)
    c = ops.gemm(a, b, torch.empty(4, 5), trans_b=True)
    close(c.numpy(), (a.double() @ b.double().T).numpy(), rtol=1e-3, atol=1e-3)


# ---- errors -------------------------------------------------------------------------------------


def test_bad_shapes_name_the_argument(rng):
    x = randn(rng, 4, 8)
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.layer_norm(x, np.ones(9, np.float32), np.zeros(8, np.float32))
    assert e.value.code == dsabi.Status.INVALID_ARG == -1
    assert "weight" in e.value.message and "[9]" in e.value.message
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.softmax(x, 1.0, np.empty((4, 9), np.float32))
    assert re.search(r"\by\b", e.value.message)
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.gemm(x, randn(rng, 7, 3))  # K differs: 8 vs 7
    assert re.search(r"\bb\b", e.value.message)
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.cross_entropy(x, np.zeros(4, np.float32))
    assert "targets" in e.value.message
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.optim_step([randn(rng, 3)], [randn(rng, 4)], [np.zeros(3, np.float32)], [np.zeros(3, np.float32)],
                       step=1)
    assert "grads[0]" in e.value.message
    with pytest.raises(dsabi.InvalidArgumentError) as e:
        ops.activation("relu", x[:, ::2])
    assert "contiguous" in e.value.message and "x" in e.value.message


def test_python_side_errors(rng):
    with pytest.raises(TypeError, match="tensors\\[1\\]"):
        ops.global_norm([randn(rng, 3), [1.0, 2.0]])
    with pytest.raises(ValueError, match="unknown Activation"):
        ops.activation("tanh", randn(rng, 3))
    closed = dsabi.Tensor.create(3)
    closed.close()
    with pytest.raises(dsabi.InvalidHandleError):
        ops.scale([closed], 2.0)


# ---- CUDA (where the CUDA backend and a GPU are present) ----------------------------------------

needs_cuda = pytest.mark.skipif(dsabi.device_count("cuda") == 0, reason="no CUDA device (or no CUDA backend)")


@needs_cuda
def test_cuda_tensors_match_the_cpu(rng):
    def cuda(a):
        return dsabi.Tensor.from_numpy(np.ascontiguousarray(a)).clone("cuda:0")

    def host(t):
        dsabi.Device("cuda", 0).synchronize()
        return t.clone("cpu").numpy()

    x, w, b = randn(rng, 16, 64), randn(rng, 64), randn(rng, 64)
    y = ops.layer_norm(cuda(x), cuda(w), cuda(b))  # allocated on the inputs' device
    assert isinstance(y, dsabi.Tensor) and y.device == dsabi.Device("cuda", 0)
    close(host(y), ops.layer_norm(x, w, b), rtol=1e-4, atol=1e-5)

    a, wt = randn(rng, 8, 64), randn(rng, 32, 64)
    close(host(ops.gemm(cuda(a), cuda(wt), trans_b=True)), ops.gemm(a, wt, trans_b=True), rtol=1e-3, atol=1e-3)

    logits, targets = randn(rng, 8, 100), rng.integers(0, 100, 8).astype(np.int64)
    close(host(ops.cross_entropy(cuda(logits), cuda(targets))), ops.cross_entropy(logits, targets), rtol=1e-5, atol=1e-5)

    p, g = randn(rng, 1000), randn(rng, 1000)
    pc, gc, mc, vc = cuda(p), cuda(g), cuda(np.zeros(1000, np.float32)), cuda(np.zeros(1000, np.float32))
    assert ops.global_norm([gc]) == pytest.approx(ops.global_norm([g]), rel=1e-6)
    m, v = np.zeros(1000, np.float32), np.zeros(1000, np.float32)
    for step in (1, 2):
        assert ops.optim_step(pc, gc, mc, vc, step=step, lr=1e-2) is False
        ops.optim_step(p, g, m, v, step=step, lr=1e-2)
    close(host(pc), p, rtol=1e-5, atol=1e-6)
    with pytest.raises(dsabi.DeviceMismatchError) as e:
        ops.add(cuda(x), x)  # one tensor on the GPU, one on the CPU
    assert e.value.code == dsabi.Status.DEVICE_MISMATCH
