"""dsabi.ops.optim_step against torch.optim, step for step: AdamW, Adam (L2 weight decay), Adagrad
(lr_decay, weight decay) and SGD (momentum, dampening, Nesterov, weight decay) over 5 steps on
tensors of odd sizes (SIMD tails), with torch tensors passed zero-copy through DLPack; and bf16
gradients with bf16 working copies (params_lp) against torch's bf16 rounding of the updated
params. Each test runs on every CPU instruction set this CPU has (scalar, AVX2, AVX-512). Runs
under /usr/bin/python3 with Debian's python3-torch."""

import pytest

import dsabi
from dsabi import ops

torch = pytest.importorskip("torch", reason="PyTorch is not installed (python3-torch)")


def _supported_isas():
    current = ops.get_cpu_isa()
    supported = []
    for isa in ops.CpuIsa:
        try:
            ops.set_cpu_isa(isa)
            supported.append(isa)
        except dsabi.UnsupportedError:
            pass
    ops.set_cpu_isa(current)
    return supported


SUPPORTED_ISAS = _supported_isas()


@pytest.fixture(params=list(ops.CpuIsa), ids=lambda isa: isa.name.lower())
def cpu_isa(request):
    """Each test runs on every instruction set of the CPU kernels that this CPU has."""
    if request.param not in SUPPORTED_ISAS:
        pytest.skip(f"this CPU lacks {request.param.name.lower()}")
    previous = ops.get_cpu_isa()
    ops.set_cpu_isa(request.param)
    yield request.param
    ops.set_cpu_isa(previous)

STEPS = 5
SHAPES = [(1,), (7,), (33,), (257,), (5, 13), (3, 4, 129)]
RTOL = 1e-6  # f32


def assert_parity(actual, expected, where):
    """Within 1e-6 relative, element by element; near zero within 1e-6 of the tensor's largest
    magnitude: an element that is the difference of larger terms (a momentum buffer crossing zero)
    carries the rounding of those terms, and torch and dsabi round them differently (torch rounds
    after each of mul_/add_, dsabi fuses multiply-adds)."""
    atol = 1e-6 * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=atol, msg=lambda m: f"{where}: {m}")


def make_problem(seed, grad_dtype=torch.float32):
    """Initial params and, for each step, one gradient per param."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen).to(grad_dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


# name: (torch class, torch kwargs, dsabi kind, dsabi keyword arguments, torch state keys for state1/state2)
CASES = {
    "adamw": (
        torch.optim.AdamW,
        dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
        "adamw",
        dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
        ("exp_avg", "exp_avg_sq"),
    ),
    "adam_l2": (
        torch.optim.Adam,
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        "adam",
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        ("exp_avg", "exp_avg_sq"),
    ),
    "adagrad": (
        torch.optim.Adagrad,
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, eps=1e-10),
        "adagrad",
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, eps=1e-10),
        ("sum", None),
    ),
    "sgd_momentum_dampening": (
        torch.optim.SGD,
        dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
        "sgd",
        dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
        ("momentum_buffer", None),
    ),
    "sgd_nesterov": (
        torch.optim.SGD,
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "sgd",
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ("momentum_buffer", None),
    ),
    "sgd_plain": (
        torch.optim.SGD,
        dict(lr=0.1, weight_decay=0.01),
        "sgd",
        dict(lr=0.1, weight_decay=0.01),
        (None, None),
    ),
}


def torch_step(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.float().clone()
    opt.step()


@pytest.mark.parametrize("case", list(CASES))
def test_step_for_step_parity_with_torch(case, cpu_isa):
    torch_cls, torch_kwargs, kind, kwargs, (key1, key2) = CASES[case]
    init, grads = make_problem(seed=list(CASES).index(case))

    ref = [p.clone().requires_grad_(True) for p in init]
    opt = torch_cls(ref, **torch_kwargs)

    params = [p.clone() for p in init]  # dsabi updates these torch tensors in place, zero-copy
    addresses = [p.data_ptr() for p in params]
    state1 = [torch.zeros_like(p) for p in params] if key1 else []
    state2 = [torch.zeros_like(p) for p in params] if key2 else []

    for step in range(1, STEPS + 1):
        torch_step(opt, ref, grads[step - 1])
        skipped = ops.optim_step(params, grads[step - 1], state1, state2, step=step, kind=kind, **kwargs)
        assert skipped is False
        for i, (p, r) in enumerate(zip(params, ref)):
            where = f"{case} ({cpu_isa.name.lower()}), step {step}, param {i} {tuple(p.shape)}"
            assert_parity(p, r.detach(), where)
            st = opt.state[r]
            if key1:
                assert_parity(state1[i], st[key1], f"{where} {key1}")
            if key2:
                assert_parity(state2[i], st[key2], f"{where} {key2}")
    assert [p.data_ptr() for p in params] == addresses


def test_bf16_grads_and_params_lp_match_torch_rounding(cpu_isa):
    init, grads = make_problem(seed=77, grad_dtype=torch.bfloat16)
    hp = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

    ref = [p.clone().requires_grad_(True) for p in init]
    opt = torch.optim.AdamW(ref, **hp)  # f32 master weights, gradients upcast from bf16

    params = [p.clone() for p in init]
    exp_avg = [torch.zeros_like(p) for p in params]
    exp_avg_sq = [torch.zeros_like(p) for p in params]
    params_lp = [torch.zeros(p.shape, dtype=torch.bfloat16) for p in params]

    for step in range(1, STEPS + 1):
        torch_step(opt, ref, grads[step - 1])
        assert not ops.optim_step(params, grads[step - 1], exp_avg, exp_avg_sq, params_lp, step=step, kind="adamw", **hp)
        for i, (p, lp, r) in enumerate(zip(params, params_lp, ref)):
            where = f"bf16 ({cpu_isa.name.lower()}), step {step}, param {i} {tuple(p.shape)}"
            r = r.detach()
            assert_parity(p, r, where)
            # The working copy is the bf16 rounding (nearest even) of dsabi's own f32 params...
            assert torch.equal(lp, p.to(torch.bfloat16)), where
            # ... and of torch's: identical wherever the f32 params are identical, and one bf16 step
            # apart at most where they differ in the last f32 bits across a rounding boundary.
            expected = r.to(torch.bfloat16)
            differ = lp != expected
            assert not (differ & (p == r)).any(), where
            ulp = torch.finfo(torch.bfloat16).eps * r.abs().clamp_min(torch.finfo(torch.float32).tiny)
            assert ((lp.float() - expected.float()).abs() <= ulp).all(), where
