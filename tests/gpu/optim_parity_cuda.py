"""ds_op_optim_step on CUDA against torch.optim on CUDA, step for step (the GPU half of the parity
requirement; bindings/python/tests/test_optim_parity.py is the CPU half, run in CI).

The GPU machine has PyTorch but no SWIG, so this script reaches libdsabi through ctypes: torch CUDA
tensors are wrapped zero-copy with ds_tensor_wrap and updated in place by ds_op_optim_step, while
torch.optim updates its own copies of the same tensors. AdamW, Adam (L2 weight decay), Adagrad
(lr_decay) and SGD (momentum + dampening, Nesterov, plain) over 5 steps on odd shapes, then bf16
gradients with a bf16 working copy. Every param and state tensor must match within 1e-6 relative
(plus 1e-6 of the tensor's largest magnitude near zero, as the CPU test allows: torch rounds after
each of its separate kernels, dsabi fuses multiply-adds), and the bf16 copy must be exactly the
rounding of dsabi's own f32 params.

    python3 tests/gpu/optim_parity_cuda.py BUILD/lib/libdsabi.so      (exit 0: every check passed)

DSABI_PARITY_DEVICE=cpu runs the same checks on CPU tensors (to try the script without a GPU).
"""
import ctypes
import os
import sys

import torch

STEPS = 5
SHAPES = [(1,), (7,), (33,), (257,), (5, 13), (3, 4, 129), (1000, 1003)]
KINDS = {"adam": 0, "adamw": 1, "sgd": 4, "adagrad": 5}
DS_DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
DS_DEV = {"cpu": 1, "cuda": 2}
DEVICE = os.environ.get("DSABI_PARITY_DEVICE", "cuda")


class OptimOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("abi_version", ctypes.c_uint32), ("kind", ctypes.c_int32),
                ("lr", ctypes.c_float), ("beta1", ctypes.c_float), ("beta2", ctypes.c_float), ("eps", ctypes.c_float),
                ("weight_decay", ctypes.c_float), ("bias_correction", ctypes.c_int32), ("momentum", ctypes.c_float),
                ("dampening", ctypes.c_float), ("nesterov", ctypes.c_int32), ("lr_decay", ctypes.c_float),
                ("max_coeff", ctypes.c_float), ("min_coeff", ctypes.c_float), ("grad_scale", ctypes.c_float),
                ("check_finite", ctypes.c_int32)]


class Dsabi:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.ds_last_error.restype = ctypes.c_char_p
        lib.ds_tensor_wrap.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ctypes.c_int64),
                                       ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p)]
        lib.ds_tensor_destroy.argtypes = [ctypes.c_void_p]
        lib.ds_optim_options_init.argtypes = [ctypes.POINTER(OptimOptions), ctypes.c_int32]
        lib.ds_optim_options_init.restype = None
        lists = []
        for _ in range(5):
            lists += [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int32]
        lib.ds_op_optim_step.argtypes = [ctypes.POINTER(OptimOptions), ctypes.c_int64] + lists + [ctypes.POINTER(ctypes.c_int32)]
        self.lib = lib
        self.check(lib.ds_lib_init(None), "ds_lib_init")

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: status {status}: {self.lib.ds_last_error().decode()}")

    def wrap(self, t):
        assert t.device.type == DEVICE and t.is_contiguous()
        shape = (ctypes.c_int64 * t.dim())(*t.shape)
        out = ctypes.c_void_p()
        self.check(self.lib.ds_tensor_wrap(ctypes.c_void_p(t.data_ptr()), DS_DTYPE[t.dtype], t.dim(), shape, None,
                                           DS_DEV[DEVICE], t.device.index or 0, ctypes.byref(out)), "ds_tensor_wrap")
        return out

    def step(self, kind, hp, step, params, grads, state1=(), state2=(), params_lp=()):
        opt = OptimOptions()
        self.lib.ds_optim_options_init(ctypes.byref(opt), KINDS[kind])
        for k, v in hp.items():
            setattr(opt, k, v)
        handles = []

        def arr(ts):
            hs = [self.wrap(t) for t in ts]
            handles.extend(hs)
            return (ctypes.c_void_p * max(len(hs), 1))(*hs), len(hs)

        args = []
        for ts in (params, grads, state1, state2, params_lp):
            a, n = arr(ts)
            args += [a, n]
        skipped = ctypes.c_int32(-1)
        try:
            self.check(self.lib.ds_op_optim_step(ctypes.byref(opt), step, *args, ctypes.byref(skipped)), "ds_op_optim_step")
        finally:
            for h in handles:
                self.lib.ds_tensor_destroy(h)
        return skipped.value


# name: torch class, torch kwargs, dsabi kind, dsabi option fields, torch state keys of state1 / state2
CASES = {
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
              "adamw", dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1), ("exp_avg", "exp_avg_sq")),
    "adam_l2": (torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
                "adam", dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05), ("exp_avg", "exp_avg_sq")),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, eps=1e-10),
                "adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, eps=1e-10), ("sum", None)),
    "sgd_momentum_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                               "sgd", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                               ("momentum_buffer", None)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                     "sgd", dict(lr=0.1, momentum=0.9, nesterov=1, weight_decay=0.01), ("momentum_buffer", None)),
    "sgd_plain": (torch.optim.SGD, dict(lr=0.1, weight_decay=0.01), "sgd", dict(lr=0.1, weight_decay=0.01), (None, None)),
}

failures = 0
checks = 0


def expect_close(actual, expected, where):
    global failures, checks
    checks += 1
    atol = 1e-6 * float(expected.abs().max())
    try:
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=atol)
    except AssertionError as e:
        failures += 1
        print(f"FAIL {where}: {str(e).splitlines()[0:4]}")


def expect(cond, where):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print(f"FAIL {where}")


def problem(seed, grad_dtype=torch.float32):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    params = [torch.randn(s, generator=gen, device=DEVICE) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, device=DEVICE).to(grad_dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def torch_step(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.float().clone()
    opt.step()


def run_case(ds, name, impl):
    torch_cls, torch_kwargs, kind, hp, (key1, key2) = CASES[name]
    init, grads = problem(seed=list(CASES).index(name) + 1)
    ref = [p.clone().requires_grad_(True) for p in init]
    opt = torch_cls(ref, **torch_kwargs, **impl)
    params = [p.clone() for p in init]
    state1 = [torch.zeros_like(p) for p in params] if key1 else []
    state2 = [torch.zeros_like(p) for p in params] if key2 else []
    for step in range(1, STEPS + 1):
        torch_step(opt, ref, grads[step - 1])
        skipped = ds.step(kind, hp, step, params, grads[step - 1], state1, state2)
        sync()
        expect(skipped == 0, f"{name}: step {step} reported skipped={skipped}")
        for i, (p, r) in enumerate(zip(params, ref)):
            where = f"{name} ({impl or 'default'}), step {step}, param {i} {tuple(p.shape)}"
            expect_close(p, r.detach(), where)
            st = opt.state[r]
            if key1:
                expect_close(state1[i], st[key1], f"{where} {key1}")
            if key2:
                expect_close(state2[i], st[key2], f"{where} {key2}")


def run_bf16(ds):
    init, grads = problem(seed=77, grad_dtype=torch.bfloat16)
    hp_torch = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ref = [p.clone().requires_grad_(True) for p in init]
    opt = torch.optim.AdamW(ref, **hp_torch)
    params = [p.clone() for p in init]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    lp = [torch.full(p.shape, float("nan"), dtype=torch.bfloat16, device=DEVICE) for p in params]
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    for step in range(1, STEPS + 1):
        torch_step(opt, ref, grads[step - 1])
        expect(ds.step("adamw", hp, step, params, grads[step - 1], m, v, lp) == 0, f"bf16: step {step} skipped")
        sync()
        for i, (p, c, r) in enumerate(zip(params, lp, ref)):
            where = f"bf16 grads, step {step}, param {i} {tuple(p.shape)}"
            expect_close(p, r.detach(), where)
            expect(torch.equal(c, p.to(torch.bfloat16)), f"{where}: the bf16 copy is not the rounding of the params")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: no CUDA device for torch")
        sys.exit(77)
    ds = Dsabi(sys.argv[1])
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'cpu'}")
    for name in CASES:
        run_case(ds, name, {})  # torch's default: foreach on CUDA
        if DEVICE == "cuda" and name.startswith(("adam", "sgd")):
            run_case(ds, name, {"fused": True})
    run_bf16(ds)
    print(f"optim parity on {DEVICE}: {checks - failures} of {checks} checks passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
