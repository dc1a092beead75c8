"""The op layer (ds_op_*): optimizer steps, reductions and casts, transformer ops, GEMM, attention
and quantization, on CPU or CUDA tensors.

    import numpy as np
    from dsabi import ops

    x = np.random.randn(8, 64).astype(np.float32)
    w, b = np.ones(64, np.float32), np.zeros(64, np.float32)
    y = ops.layer_norm(x, w, b)                        # a new NumPy array
    ops.layer_norm(x, w, b, y=y)                       # into the caller's array, zero-copy
    c = ops.gemm(x, weight, trans_b=True)              # x @ weight.T (a torch Linear weight)

    norm = ops.global_norm(grads)                      # float
    skipped = ops.optim_step(params, grads, exp_avg, exp_avg_sq, step=1, kind="adamw", lr=1e-3)

Functions are named like the C ones without ``ds_op_`` and take the C arguments in the C order, by
position or by their C names. Tensors are :class:`dsabi.Tensor` objects, NumPy arrays or any
DLPack producer (PyTorch tensors on the CPU or CUDA, CuPy, JAX): all are used in place, without
copies. A torch tensor that requires grad is detached first (optimizer steps on nn.Parameters work
as in-place updates of their data). Read-only NumPy arrays are accepted where the op only reads.

Outputs are caller-provided, as in C: pass your own array or tensor and it is written in place and
returned. Where the shape and dtype are obvious, an output left as None is allocated like the main
input (NumPy for NumPy inputs, torch for torch inputs, else a dsabi.Tensor on the input's device).
Optional outputs of C (mean/rstd, lse, the accumulated dweight/dbias) are only written when given.

Options come as keyword arguments or as option objects (:class:`OptimOptions`,
:class:`GemmOptions`, :class:`AttnOptions`, :class:`QuantOptions`; keyword arguments win). A value
left as None keeps the library's default (ds_<x>_options_init), which ``<X>Options.defaults()``
shows. Failures raise the package's DsError subclasses (InvalidArgumentError naming the C argument,
its shape or dtype and what was expected; DeviceMismatchError; UnsupportedError) with ``code``.

CUDA ops are asynchronous (queued on the device's legacy default stream): their results are ready
for any later op, collective or copy on that device, and for the host after
``dsabi.Device("cuda", i).synchronize()``. global_norm and find_nonfinite synchronise. Calls release
the GIL.
"""

import sys
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, List, Optional, Sequence, Tuple, Union

from ._errors import InvalidArgumentError, Status
from ._handle import enum_of
from ._loader import lib
from ._tensor import _NUMPY_NAMES, Tensor, _dtype_of_numpy
from ._types import DType

__all__ = [
    "CpuIsa",
    "OptimKind",
    "Activation",
    "Epilogue",
    "OptimOptions",
    "GemmOptions",
    "AttnOptions",
    "QuantOptions",
    "get_cpu_isa",
    "set_cpu_isa",
    "get_num_threads",
    "set_num_threads",
    "optim_step",
    "global_norm",
    "scale",
    "find_nonfinite",
    "cast",
    "embedding",
    "embedding_backward",
    "layer_norm",
    "layer_norm_backward",
    "rms_norm",
    "rms_norm_backward",
    "activation",
    "activation_backward",
    "swiglu",
    "swiglu_backward",
    "add",
    "sum_rows",
    "softmax",
    "softmax_backward",
    "cross_entropy",
    "rope",
    "dropout",
    "gemm",
    "attention",
    "attention_backward",
    "quantize",
    "dequantize",
    "gemm_wq",
]

TensorLike = Any  # dsabi.Tensor, numpy.ndarray, or an object with __dlpack__ (torch.Tensor, ...)


# ---- enumerations -------------------------------------------------------------------------------


class CpuIsa(IntEnum):
    """Instruction sets of the CPU kernels (enum ds_cpu_isa)."""

    SCALAR = lib.DS_CPU_ISA_SCALAR
    AVX2 = lib.DS_CPU_ISA_AVX2  # AVX2 + FMA + F16C
    AVX512 = lib.DS_CPU_ISA_AVX512  # AVX-512 F/BW/VL/DQ


class OptimKind(IntEnum):
    """Optimizers of optim_step (enum ds_optim_kind)."""

    ADAM = lib.DS_OPTIM_ADAM  # L2 weight decay added to the gradient (torch.optim.Adam)
    ADAMW = lib.DS_OPTIM_ADAMW  # decoupled weight decay (torch.optim.AdamW)
    LAMB = lib.DS_OPTIM_LAMB  # DeepSpeed FusedLamb
    LION = lib.DS_OPTIM_LION
    SGD = lib.DS_OPTIM_SGD  # torch.optim.SGD
    ADAGRAD = lib.DS_OPTIM_ADAGRAD  # torch.optim.Adagrad


class Activation(IntEnum):
    """Element-wise activations (enum ds_activation)."""

    GELU_TANH = lib.DS_ACT_GELU_TANH  # GPT-2's tanh approximation
    GELU = lib.DS_ACT_GELU  # exact (erf)
    SILU = lib.DS_ACT_SILU
    RELU = lib.DS_ACT_RELU


class Epilogue(IntEnum):
    """What gemm applies to its result (enum ds_epilogue); the epilogues need beta = 0."""

    NONE = lib.DS_EPILOGUE_NONE
    BIAS = lib.DS_EPILOGUE_BIAS  # + bias[N]
    GELU = lib.DS_EPILOGUE_GELU  # GELU (tanh)
    BIAS_GELU = lib.DS_EPILOGUE_BIAS_GELU  # GELU (tanh) of result + bias


# ---- options ------------------------------------------------------------------------------------


class _Options:
    """Shared by the option dataclasses: fields left None keep the library's default."""

    _bools: Tuple[str, ...] = ()
    _enums: dict = {}

    def _new_raw(self):  # the SWIG struct, with the library's defaults
        raise NotImplementedError

    def _raw(self, **overrides):
        """The SWIG struct: library defaults, then this object's fields, then overrides (None
        values ignored)."""
        raw = self._new_raw()
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name, value in values.items():
            if value is None or name == "kind":
                continue
            if name in self._enums:
                value = int(enum_of(self._enums[name], value))
            elif name in self._bools:
                value = int(bool(value))
            else:  # NumPy scalars and the like: the SWIG setters take Python numbers
                value = float(value) if isinstance(getattr(raw, name), float) else int(value)
            setattr(raw, name, value)
        return raw

    @classmethod
    def _from_raw(cls, raw, **extra):
        values = dict(extra)
        for f in fields(cls):
            if f.name in values:
                continue
            value = getattr(raw, f.name)
            if f.name in cls._bools:
                value = bool(value)
            elif f.name in cls._enums:
                value = cls._enums[f.name](value)
            values[f.name] = value
        return cls(**values)


@dataclass
class OptimOptions(_Options):
    """Hyper-parameters of optim_step (ds_optim_options_t). The defaults depend on ``kind``: those
    of torch.optim, and DeepSpeed's FusedLamb for LAMB; ``OptimOptions.defaults("sgd")`` lists
    them."""

    kind: Union[OptimKind, str, int] = OptimKind.ADAMW
    lr: Optional[float] = None
    beta1: Optional[float] = None  # Adam / AdamW / LAMB / Lion
    beta2: Optional[float] = None
    eps: Optional[float] = None  # Adam / AdamW / LAMB / Adagrad
    weight_decay: Optional[float] = None
    bias_correction: Optional[bool] = None  # Adam / AdamW / LAMB
    momentum: Optional[float] = None  # SGD
    dampening: Optional[float] = None  # SGD
    nesterov: Optional[bool] = None  # SGD
    lr_decay: Optional[float] = None  # Adagrad
    max_coeff: Optional[float] = None  # LAMB trust-ratio clamp
    min_coeff: Optional[float] = None
    grad_scale: Optional[float] = None  # every gradient is multiplied by this first (1/loss_scale)
    check_finite: Optional[bool] = None  # a non-finite gradient skips the whole step

    _bools = ("bias_correction", "nesterov", "check_finite")

    def _new_raw(self):
        return lib.OptimOptions(int(enum_of(OptimKind, self.kind)))

    @classmethod
    def defaults(cls, kind: Union[OptimKind, str, int] = OptimKind.ADAMW) -> "OptimOptions":
        """Every field as ds_optim_options_init(kind) sets it."""
        kind = enum_of(OptimKind, kind)
        return cls._from_raw(lib.OptimOptions(int(kind)), kind=kind)


@dataclass
class GemmOptions(_Options):
    """Options of gemm (ds_gemm_options_t)."""

    trans_a: Optional[bool] = None  # A is [K, M] instead of [M, K]
    trans_b: Optional[bool] = None  # B is [N, K] (a torch Linear weight) instead of [K, N]
    alpha: Optional[float] = None
    beta: Optional[float] = None  # 0: C is overwritten; 1: accumulated into
    epilogue: Optional[Union[Epilogue, str, int]] = None

    _bools = ("trans_a", "trans_b")
    _enums = {"epilogue": Epilogue}

    def _new_raw(self):
        return lib.GemmOptions()

    @classmethod
    def defaults(cls) -> "GemmOptions":
        """Every field as ds_gemm_options_init sets it."""
        return cls._from_raw(lib.GemmOptions())


@dataclass
class AttnOptions(_Options):
    """Options of attention (ds_attn_options_t)."""

    causal: Optional[bool] = None  # query i sees keys j <= i + (S_kv - S)
    scale: Optional[float] = None  # 0: 1 / sqrt(D)

    _bools = ("causal",)

    def _new_raw(self):
        return lib.AttnOptions()

    @classmethod
    def defaults(cls) -> "AttnOptions":
        """Every field as ds_attn_options_init sets it."""
        return cls._from_raw(lib.AttnOptions())


@dataclass
class QuantOptions(_Options):
    """Options of quantize, dequantize and gemm_wq (ds_quant_options_t)."""

    bits: Optional[int] = None  # 8 or 4
    group_size: Optional[int] = None  # elements per scale along the last dimension
    symmetric: Optional[bool] = None  # False: asymmetric, with zero points

    _bools = ("symmetric",)

    def _new_raw(self):
        return lib.QuantOptions()

    @classmethod
    def defaults(cls) -> "QuantOptions":
        """Every field as ds_quant_options_init sets it."""
        return cls._from_raw(lib.QuantOptions())


def _options(cls, given, **overrides):
    """The SWIG struct for an options argument (None, or an instance of cls) and keyword overrides."""
    if given is None:
        given = cls()
    elif not isinstance(given, cls):
        raise TypeError(f"options: expected {cls.__name__} or None, got {type(given).__name__}")
    return given._raw(**overrides)


# ---- arguments ----------------------------------------------------------------------------------


def _torch_tensor_type():
    torch = sys.modules.get("torch")  # never imported here: only objects from a loaded torch matter
    return torch.Tensor if torch is not None else None


def _is_numpy(x) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def _is_tensor_like(x) -> bool:
    return isinstance(x, Tensor) or _is_numpy(x) or hasattr(x, "__dlpack__")


def _arg(x: TensorLike, name: str, writes: bool = True) -> Tensor:
    """A Tensor on x's memory, without copying. writes=False accepts read-only NumPy arrays."""
    if isinstance(x, Tensor):
        return x
    if _is_numpy(x):
        if writes or x.flags.writeable:
            return Tensor.from_numpy(x)
        dtype = _dtype_of_numpy(x.dtype)
        itemsize = x.dtype.itemsize
        if any(s % itemsize for s in x.strides):
            raise InvalidArgumentError(
                Status.INVALID_ARG, f"{name}: strides {x.strides} are not multiples of the item size {itemsize}"
            )
        strides = [s // itemsize for s in x.strides]
        return Tensor.wrap(x.ctypes.data, x.shape, dtype, strides=strides, keepalive=x)
    torch_tensor = _torch_tensor_type()
    if torch_tensor is not None and isinstance(x, torch_tensor) and x.requires_grad:
        x = x.detach()  # shares the memory; DLPack refuses tensors that require grad
    if hasattr(x, "__dlpack__"):
        return Tensor.from_dlpack(x)
    raise TypeError(
        f"{name}: expected a dsabi.Tensor, a numpy.ndarray or a DLPack producer (torch.Tensor, ...), "
        f"got {type(x).__name__}"
    )


def _in(x: Optional[TensorLike], name: str) -> Optional[Tensor]:
    """An input argument (the op only reads it); None stays None (NULL)."""
    return None if x is None else _arg(x, name, writes=False)


def _out(x: Optional[TensorLike], name: str) -> Optional[Tensor]:
    """An output argument; None stays None (NULL)."""
    return None if x is None else _arg(x, name, writes=True)


def _h(t: Optional[Tensor]):
    """The SWIG handle of a Tensor, or None (NULL)."""
    return None if t is None else t._live()


def _list(xs, name: str, writes: bool) -> Tuple[List[Tensor], List[Any]]:
    """A tensor list argument: None (empty), one tensor, or a sequence of them."""
    if xs is None:
        items = []
    elif _is_tensor_like(xs):
        items = [xs]
    else:
        items = list(xs)
    tensors = [_arg(x, f"{name}[{i}]", writes) for i, x in enumerate(items)]
    return tensors, [t._live() for t in tensors]


_TORCH_DTYPES = {
    DType.F32: "float32",
    DType.F16: "float16",
    DType.BF16: "bfloat16",
    DType.F64: "float64",
    DType.I8: "int8",
    DType.U8: "uint8",
    DType.I32: "int32",
    DType.I64: "int64",
}


def _empty(like: TensorLike, like_t: Tensor, shape: Sequence[int], dtype: DType):
    """A new output of shape and dtype, of the kind and on the device of ``like`` (the caller's
    object for the input like_t): NumPy for NumPy, torch for torch, else a dsabi.Tensor."""
    shape = tuple(int(d) for d in shape)
    if _is_numpy(like) and dtype in _NUMPY_NAMES:
        import numpy as np

        return np.empty(shape, dtype=_NUMPY_NAMES[dtype])
    torch_tensor = _torch_tensor_type()
    if torch_tensor is not None and isinstance(like, torch_tensor) and dtype in _TORCH_DTYPES:
        import torch

        return torch.empty(shape, dtype=getattr(torch, _TORCH_DTYPES[dtype]), device=like.device)
    return Tensor.create(shape, dtype, like_t.device)


def _output(given, name: str, like, like_t: Tensor, shape, dtype: DType):
    """(caller object, Tensor) of an output: the given one, or a new one from _empty."""
    if given is None:
        given = _empty(like, like_t, shape, dtype)
    return given, _out(given, name)


# ---- CPU kernels: instruction set and threads ---------------------------------------------------


def get_cpu_isa() -> CpuIsa:
    """The instruction set the CPU kernels use: the best this CPU has, or what set_cpu_isa or
    $DSABI_CPU_ISA ("scalar", "avx2", "avx512") chose."""
    return CpuIsa(lib.op_get_cpu_isa())


def set_cpu_isa(isa: Union[CpuIsa, str, int]) -> None:
    """Force an instruction set (for tests and comparisons); UnsupportedError if this CPU lacks
    it. Process-global."""
    lib.op_set_cpu_isa(int(enum_of(CpuIsa, isa)))


def get_num_threads() -> int:
    """Threads of the CPU kernels."""
    return lib.op_get_num_threads()


def set_num_threads(n: int) -> None:
    """Threads of the CPU kernels; 0 restores the default ($OMP_NUM_THREADS, else every core).
    Process-global."""
    lib.op_set_num_threads(int(n))


# ---- optimizers ---------------------------------------------------------------------------------


def optim_step(
    params,
    grads,
    state1=None,
    state2=None,
    params_lp=None,
    *,
    step: int,
    options: Optional[OptimOptions] = None,
    kind: Optional[Union[OptimKind, str, int]] = None,
    lr: Optional[float] = None,
    betas: Optional[Tuple[float, float]] = None,
    beta1: Optional[float] = None,
    beta2: Optional[float] = None,
    eps: Optional[float] = None,
    weight_decay: Optional[float] = None,
    bias_correction: Optional[bool] = None,
    momentum: Optional[float] = None,
    dampening: Optional[float] = None,
    nesterov: Optional[bool] = None,
    lr_decay: Optional[float] = None,
    max_coeff: Optional[float] = None,
    min_coeff: Optional[float] = None,
    grad_scale: Optional[float] = None,
    check_finite: Optional[bool] = None,
) -> bool:
    """One optimizer step over many parameters (ds_op_optim_step; one launch on CUDA). Returns
    whether the step was skipped (check_finite and an inf/nan gradient: nothing is written).

    Lists are parallel (entry i of each belongs to parameter i); a single tensor is a list of one,
    None an empty list:
      params     f32 master weights, updated in place
      grads      f32, f16 or bf16, same shapes; read only
      state1     f32: exp_avg (Adam/AdamW/LAMB/Lion), the momentum buffer (SGD; none when
                 momentum is 0), the sum of squares (Adagrad)
      state2     f32: exp_avg_sq (Adam/AdamW/LAMB); none for the others
      params_lp  optional f16/bf16 working copies written from the updated params
    step is the 1-based number of this step. The hyper-parameters come from ``options`` and the
    keyword arguments (``betas=(b1, b2)`` as in torch); kind defaults to AdamW; unset ones keep
    the defaults of the kind (OptimOptions.defaults(kind)).
    """
    if betas is not None:
        if beta1 is not None or beta2 is not None:
            raise TypeError("optim_step: pass betas or beta1/beta2, not both")
        beta1, beta2 = betas
    if kind is not None:
        base = options if options is not None else OptimOptions()
        if not isinstance(base, OptimOptions):
            raise TypeError(f"options: expected OptimOptions or None, got {type(base).__name__}")
        options = OptimOptions(**{**{f.name: getattr(base, f.name) for f in fields(base)}, "kind": kind})
    raw = _options(
        OptimOptions,
        options,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        bias_correction=bias_correction,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        lr_decay=lr_decay,
        max_coeff=max_coeff,
        min_coeff=min_coeff,
        grad_scale=grad_scale,
        check_finite=check_finite,
    )
    p, ph = _list(params, "params", True)
    g, gh = _list(grads, "grads", False)
    s1, s1h = _list(state1, "state1", True)
    s2, s2h = _list(state2, "state2", True)
    lp, lph = _list(params_lp, "params_lp", True)
    # p, g, s1, s2 and lp (the Tensors, and the arrays they hold) live through the call.
    return bool(lib.op_optim_step(raw, int(step), ph, gh, s1h, s2h, lph))


# ---- reductions and element-wise utilities ------------------------------------------------------


def global_norm(tensors) -> float:
    """L2 norm over every element of every tensor (float dtypes; f64 accumulation on the CPU). A
    non-finite element gives a non-finite norm. Synchronises."""
    ts, hs = _list(tensors, "tensors", False)
    return lib.op_global_norm(hs)


def scale(tensors, alpha: float) -> None:
    """Multiply every element of every tensor by alpha, in place."""
    ts, hs = _list(tensors, "tensors", True)
    lib.op_scale(hs, float(alpha))


def find_nonfinite(tensors) -> bool:
    """Whether any element of any tensor is inf or nan. Synchronises."""
    ts, hs = _list(tensors, "tensors", False)
    return bool(lib.op_find_nonfinite(hs))


def cast(src: TensorLike, dst: TensorLike, scale: float = 1.0):
    """dst = src * scale, converted between f32, f16, bf16, f64, FP8_E4M3 and FP8_E5M2 (round to
    nearest even; conversions to FP8 saturate, nan stays nan). Same number of elements. Returns
    dst."""
    s, d = _in(src, "src"), _out(dst, "dst")
    lib.op_cast(s._live(), d._live(), float(scale))
    return dst


# ---- transformer ops ----------------------------------------------------------------------------


def embedding(weight: TensorLike, ids: TensorLike, out: Optional[TensorLike] = None):
    """out[..., D] = weight[V, D][ids]; ids i32 or i64 in [0, V). out None: allocated with ids'
    shape + (D,) and weight's dtype. Returns out."""
    w, i = _in(weight, "weight"), _in(ids, "ids")
    out, o = _output(out, "out", weight, w, tuple(i.shape) + (w.shape[-1],), w.dtype)
    lib.op_embedding(w._live(), i._live(), o._live())
    return out


def embedding_backward(ids: TensorLike, dout: TensorLike, dweight: TensorLike):
    """dweight[V, D] += scatter-add of dout[N, D] at ids (deterministic). Returns dweight."""
    i, g, dw = _in(ids, "ids"), _in(dout, "dout"), _out(dweight, "dweight")
    lib.op_embedding_backward(i._live(), g._live(), dw._live())
    return dweight


def layer_norm(
    x: TensorLike,
    weight: TensorLike,
    bias: Optional[TensorLike] = None,
    eps: float = 1e-5,
    y: Optional[TensorLike] = None,
    mean: Optional[TensorLike] = None,
    rstd: Optional[TensorLike] = None,
):
    """y[N, D] = (x - mean) * rstd * weight + bias over the last dimension. mean and rstd ([N] f32,
    optional) receive the statistics for the backward. y None: allocated like x. Returns y."""
    xt, w, b = _in(x, "x"), _in(weight, "weight"), _in(bias, "bias")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    m, r = _out(mean, "mean"), _out(rstd, "rstd")
    lib.op_layer_norm(xt._live(), w._live(), _h(b), float(eps), yt._live(), _h(m), _h(r))
    return y


def layer_norm_backward(
    dy: TensorLike,
    x: TensorLike,
    weight: TensorLike,
    mean: TensorLike,
    rstd: TensorLike,
    dx: Optional[TensorLike] = None,
    dweight: Optional[TensorLike] = None,
    dbias: Optional[TensorLike] = None,
):
    """dx (overwritten; None: allocated like x), and dweight and dbias (accumulated, optional) from
    dy, x and the forward's mean and rstd. Returns dx."""
    g, xt, w, m, r = _in(dy, "dy"), _in(x, "x"), _in(weight, "weight"), _in(mean, "mean"), _in(rstd, "rstd")
    dx, dxt = _output(dx, "dx", x, xt, xt.shape, xt.dtype)
    dw, db = _out(dweight, "dweight"), _out(dbias, "dbias")
    lib.op_layer_norm_backward(g._live(), xt._live(), w._live(), m._live(), r._live(), dxt._live(), _h(dw), _h(db))
    return dx


def rms_norm(
    x: TensorLike,
    weight: TensorLike,
    eps: float = 1e-6,
    y: Optional[TensorLike] = None,
    rstd: Optional[TensorLike] = None,
):
    """y[N, D] = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); rstd [N] f32 optional.
    y None: allocated like x. Returns y."""
    xt, w = _in(x, "x"), _in(weight, "weight")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    r = _out(rstd, "rstd")
    lib.op_rms_norm(xt._live(), w._live(), float(eps), yt._live(), _h(r))
    return y


def rms_norm_backward(
    dy: TensorLike,
    x: TensorLike,
    weight: TensorLike,
    rstd: TensorLike,
    dx: Optional[TensorLike] = None,
    dweight: Optional[TensorLike] = None,
):
    """dx (overwritten; None: allocated like x) and dweight (accumulated, optional). Returns dx."""
    g, xt, w, r = _in(dy, "dy"), _in(x, "x"), _in(weight, "weight"), _in(rstd, "rstd")
    dx, dxt = _output(dx, "dx", x, xt, xt.shape, xt.dtype)
    dw = _out(dweight, "dweight")
    lib.op_rms_norm_backward(g._live(), xt._live(), w._live(), r._live(), dxt._live(), _h(dw))
    return dx


def activation(act: Union[Activation, str, int], x: TensorLike, y: Optional[TensorLike] = None):
    """y = act(x), element-wise ("gelu_tanh", "gelu", "silu", "relu"); y may be x. y None:
    allocated like x. Returns y."""
    a = int(enum_of(Activation, act))
    xt = _in(x, "x")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    lib.op_activation(a, xt._live(), yt._live())
    return y


def activation_backward(
    act: Union[Activation, str, int], x: TensorLike, dy: TensorLike, dx: Optional[TensorLike] = None
):
    """dx = dy * act'(x); dx may be dy. dx None: allocated like x. Returns dx."""
    a = int(enum_of(Activation, act))
    xt, g = _in(x, "x"), _in(dy, "dy")
    dx, dxt = _output(dx, "dx", x, xt, xt.shape, xt.dtype)
    lib.op_activation_backward(a, xt._live(), g._live(), dxt._live())
    return dx


def swiglu(gate: TensorLike, up: TensorLike, y: Optional[TensorLike] = None):
    """y = silu(gate) * up, all the same shape. y None: allocated like gate. Returns y."""
    gt, ut = _in(gate, "gate"), _in(up, "up")
    y, yt = _output(y, "y", gate, gt, gt.shape, gt.dtype)
    lib.op_swiglu(gt._live(), ut._live(), yt._live())
    return y


def swiglu_backward(
    gate: TensorLike,
    up: TensorLike,
    dy: TensorLike,
    dgate: Optional[TensorLike] = None,
    dup: Optional[TensorLike] = None,
):
    """dgate and dup (overwritten; None: allocated like gate) from dy. Returns (dgate, dup)."""
    gt, ut, g = _in(gate, "gate"), _in(up, "up"), _in(dy, "dy")
    dgate, dgt = _output(dgate, "dgate", gate, gt, gt.shape, gt.dtype)
    dup, dut = _output(dup, "dup", gate, gt, gt.shape, gt.dtype)
    lib.op_swiglu_backward(gt._live(), ut._live(), g._live(), dgt._live(), dut._live())
    return dgate, dup


def add(a: TensorLike, b: TensorLike, y: Optional[TensorLike] = None):
    """y = a + b (residual add), or y[N, D] = a[N, D] + b[D] when b has one dimension (bias add).
    y may be a. y None: allocated like a. Returns y."""
    at, bt = _in(a, "a"), _in(b, "b")
    y, yt = _output(y, "y", a, at, at.shape, at.dtype)
    lib.op_add(at._live(), bt._live(), yt._live())
    return y


def sum_rows(dy: TensorLike, dbias: TensorLike):
    """dbias[D] += sum over the rows of dy[N, D] (the gradient of a bias add). Returns dbias."""
    g, db = _in(dy, "dy"), _out(dbias, "dbias")
    lib.op_sum_rows(g._live(), db._live())
    return dbias


def softmax(x: TensorLike, scale: float = 1.0, y: Optional[TensorLike] = None):
    """y[N, D] = softmax(x * scale) over the last dimension; y may be x. y None: allocated like x.
    Returns y."""
    xt = _in(x, "x")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    lib.op_softmax(xt._live(), float(scale), yt._live())
    return y


def softmax_backward(y: TensorLike, dy: TensorLike, scale: float = 1.0, dx: Optional[TensorLike] = None):
    """dx = scale * y * (dy - sum(dy * y)) from the softmax output y; dx may be dy. dx None:
    allocated like y. Returns dx."""
    yt, g = _in(y, "y"), _in(dy, "dy")
    dx, dxt = _output(dx, "dx", y, yt, yt.shape, yt.dtype)
    lib.op_softmax_backward(yt._live(), g._live(), float(scale), dxt._live())
    return dx


def cross_entropy(
    logits: TensorLike,
    targets: TensorLike,
    ignore_index: int = -100,
    dloss: float = 1.0,
    losses: Optional[TensorLike] = None,
    dlogits: Optional[TensorLike] = None,
):
    """Cross-entropy of logits[N, V] (float) against targets[N] (i32/i64), fused with its
    backward: losses[N] f32 = logsumexp(row) - row[target]; dlogits (optional, logits' dtype; may
    be logits itself) = (softmax(row) - onehot(target)) * dloss, with dloss the gradient of each
    row's loss (1/N for a mean). Rows whose target is ignore_index (default -100, as in torch) get
    loss 0 and zero gradient. losses None: allocated ([N] f32). Returns losses."""
    lt, tt = _in(logits, "logits"), _in(targets, "targets")
    n = 1
    for d in lt.shape[:-1]:
        n *= d
    losses, lo = _output(losses, "losses", logits, lt, (n,), DType.F32)
    dl = _out(dlogits, "dlogits")
    lib.op_cross_entropy(lt._live(), tt._live(), int(ignore_index), float(dloss), lo._live(), _h(dl))
    return losses


def rope(
    x: TensorLike,
    positions: TensorLike,
    theta: float = 10000.0,
    inverse: bool = False,
    y: Optional[TensorLike] = None,
):
    """Rotary position embedding on x[N, H, D] (D even) at positions[N] (i32/i64), rotate-half
    pairing (GPT-NeoX, Llama). inverse=True turns the other way (the backward). y may be x. y None:
    allocated like x. Returns y."""
    xt, pt = _in(x, "x"), _in(positions, "positions")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    lib.op_rope(xt._live(), pt._live(), float(theta), bool(inverse), yt._live())
    return y


def dropout(x: TensorLike, p: float, seed: int, offset: int = 0, y: Optional[TensorLike] = None):
    """Inverted dropout y = x * keep / (1 - p), keep from a counter-based generator keyed by
    (seed, offset + element index), the same on CPU and CUDA; the backward is the same call on dy.
    y may be x. y None: allocated like x. Returns y."""
    xt = _in(x, "x")
    y, yt = _output(y, "y", x, xt, xt.shape, xt.dtype)
    lib.op_dropout(xt._live(), float(p), int(seed), int(offset), yt._live())
    return y


# ---- GEMM ---------------------------------------------------------------------------------------


def gemm(
    a: TensorLike,
    b: TensorLike,
    c: Optional[TensorLike] = None,
    bias: Optional[TensorLike] = None,
    *,
    options: Optional[GemmOptions] = None,
    trans_a: Optional[bool] = None,
    trans_b: Optional[bool] = None,
    alpha: Optional[float] = None,
    beta: Optional[float] = None,
    epilogue: Optional[Union[Epilogue, str, int]] = None,
):
    """C[M, N] = epilogue(alpha * op(A) op(B) + beta * C), row-major (ds_op_gemm). 3-D A, B and C
    are a batch ([batch, rows, cols]; B may be 2-D and shared). A and B: f32, f16 or bf16, the
    same; C: their dtype or f32; bias [N]: C's dtype. trans_a: A is [K, M]; trans_b: B is [N, K]
    (a torch Linear weight). A bias needs a bias epilogue: when no epilogue is named (here or in
    options), passing bias selects BIAS. c None: allocated ([batch,] M, N, A's dtype; needs
    beta = 0). Returns c."""
    if bias is not None and epilogue is None and (options is None or options.epilogue is None):
        epilogue = Epilogue.BIAS
    raw = _options(GemmOptions, options, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, epilogue=epilogue)
    at, bt, biast = _in(a, "a"), _in(b, "b"), _in(bias, "bias")
    if c is None:
        if raw.beta != 0:
            raise InvalidArgumentError(
                Status.INVALID_ARG, f"gemm: beta={raw.beta} accumulates into c, so c must be given"
            )
        if at.ndim < 2 or bt.ndim < 2:
            raise InvalidArgumentError(
                Status.INVALID_ARG, f"gemm: a {list(at.shape)} and b {list(bt.shape)} need 2 or 3 dimensions"
            )
        m = at.shape[-1] if raw.trans_a else at.shape[-2]
        n = bt.shape[-2] if raw.trans_b else bt.shape[-1]
        c = _empty(a, at, tuple(at.shape[:-2]) + (m, n), at.dtype)
    ct = _out(c, "c")
    lib.op_gemm(at._live(), bt._live(), _h(biast), ct._live(), raw)
    return c


# ---- attention ----------------------------------------------------------------------------------


def attention(
    q: TensorLike,
    k: TensorLike,
    v: TensorLike,
    o: Optional[TensorLike] = None,
    lse: Optional[TensorLike] = None,
    *,
    options: Optional[AttnOptions] = None,
    causal: Optional[bool] = None,
    scale: Optional[float] = None,
):
    """Scaled dot-product attention, flash-style: q and o [B, S, Hq, D], k and v [B, S_kv, Hkv, D]
    (Hq a multiple of Hkv: grouped-query heads); lse [B, Hq, S] f32 (optional) receives each query
    row's log-sum-exp for the backward. causal: query i sees keys j <= i + (S_kv - S); scale 0 or
    None: 1/sqrt(D). o None: allocated like q. Returns o."""
    raw = _options(AttnOptions, options, causal=causal, scale=scale)
    qt, kt, vt = _in(q, "q"), _in(k, "k"), _in(v, "v")
    o, ot = _output(o, "o", q, qt, qt.shape, qt.dtype)
    lt = _out(lse, "lse")
    lib.op_attention(qt._live(), kt._live(), vt._live(), ot._live(), _h(lt), raw)
    return o


def attention_backward(
    q: TensorLike,
    k: TensorLike,
    v: TensorLike,
    o: TensorLike,
    dout: TensorLike,
    lse: TensorLike,
    dq: Optional[TensorLike] = None,
    dk: Optional[TensorLike] = None,
    dv: Optional[TensorLike] = None,
    *,
    options: Optional[AttnOptions] = None,
    causal: Optional[bool] = None,
    scale: Optional[float] = None,
):
    """dq, dk, dv (overwritten; None: allocated like q, k, v) from dout, the forward's o and lse.
    The options must be the forward's. Returns (dq, dk, dv)."""
    raw = _options(AttnOptions, options, causal=causal, scale=scale)
    qt, kt, vt = _in(q, "q"), _in(k, "k"), _in(v, "v")
    ot, gt, lt = _in(o, "o"), _in(dout, "dout"), _in(lse, "lse")
    dq, dqt = _output(dq, "dq", q, qt, qt.shape, qt.dtype)
    dk, dkt = _output(dk, "dk", k, kt, kt.shape, kt.dtype)
    dv, dvt = _output(dv, "dv", v, vt, vt.shape, vt.dtype)
    lib.op_attention_backward(
        qt._live(), kt._live(), vt._live(), ot._live(), gt._live(), lt._live(), dqt._live(), dkt._live(), dvt._live(), raw
    )
    return dq, dk, dv


# ---- quantization -------------------------------------------------------------------------------


def quantize(
    x: TensorLike,
    q: Optional[TensorLike] = None,
    scales: Optional[TensorLike] = None,
    zeros: Optional[TensorLike] = None,
    *,
    options: Optional[QuantOptions] = None,
    bits: Optional[int] = None,
    group_size: Optional[int] = None,
    symmetric: Optional[bool] = None,
):
    """Group-wise quantization of x[N, K] (float). 8 bits: q is i8 [N, K] (symmetric, -127..127)
    or u8 (asymmetric, 0..255); 4 bits: q is u8 [N, K/2], two values per byte, the even element in
    the low nibble (symmetric values -7..7 stored +8; asymmetric 0..15). scales [N, K/group] f32;
    zeros [N, K/group] f32 for asymmetric only: x ~ q * scale (+ zero). Outputs left None are
    allocated (with x's leading dimensions). Returns (q, scales, zeros); zeros is None when
    symmetric."""
    raw = _options(QuantOptions, options, bits=bits, group_size=group_size, symmetric=symmetric)
    xt = _in(x, "x")
    lead = tuple(xt.shape[:-1])
    k = xt.shape[-1] if xt.ndim else 0
    groups = k // raw.group_size if raw.group_size > 0 else 0
    q_dtype = DType.I8 if raw.bits == 8 and raw.symmetric else DType.U8
    q, qt = _output(q, "q", x, xt, lead + ((k // 2) if raw.bits == 4 else k,), q_dtype)
    scales, st = _output(scales, "scales", x, xt, lead + (groups,), DType.F32)
    if zeros is None and not raw.symmetric:
        zeros = _empty(x, xt, lead + (groups,), DType.F32)
    zt = _out(zeros, "zeros")
    lib.op_quantize(xt._live(), qt._live(), st._live(), _h(zt), raw)
    return q, scales, zeros


def dequantize(
    q: TensorLike,
    scales: TensorLike,
    zeros: Optional[TensorLike] = None,
    y: Optional[TensorLike] = None,
    *,
    dtype: Union[DType, str, int] = DType.F32,
    options: Optional[QuantOptions] = None,
    bits: Optional[int] = None,
    group_size: Optional[int] = None,
    symmetric: Optional[bool] = None,
):
    """y[N, K] (float) from q, scales and zeros as quantize made them, with the same options.
    y None: allocated with ``dtype`` (f32). Returns y."""
    raw = _options(QuantOptions, options, bits=bits, group_size=group_size, symmetric=symmetric)
    qt, st, zt = _in(q, "q"), _in(scales, "scales"), _in(zeros, "zeros")
    k = qt.shape[-1] * (2 if raw.bits == 4 else 1) if qt.ndim else 0
    y, yt = _output(y, "y", scales, st, tuple(qt.shape[:-1]) + (k,), DType.of(dtype))
    lib.op_dequantize(qt._live(), st._live(), _h(zt), yt._live(), raw)
    return y


def gemm_wq(
    x: TensorLike,
    wq: TensorLike,
    scales: TensorLike,
    zeros: Optional[TensorLike] = None,
    bias: Optional[TensorLike] = None,
    y: Optional[TensorLike] = None,
    *,
    options: Optional[QuantOptions] = None,
    bits: Optional[int] = None,
    group_size: Optional[int] = None,
    symmetric: Optional[bool] = None,
):
    """Weight-only quantized linear: y[M, N] = x[M, K] dequant(wq)^T (+ bias[N]), with wq, scales
    and zeros as quantize made them from an [N, K] weight (same options). x, y and bias: float, the
    same dtype. y None: allocated (x's leading dimensions, N). Returns y."""
    raw = _options(QuantOptions, options, bits=bits, group_size=group_size, symmetric=symmetric)
    xt, wt, st = _in(x, "x"), _in(wq, "wq"), _in(scales, "scales")
    zt, bt = _in(zeros, "zeros"), _in(bias, "bias")
    y, yt = _output(y, "y", x, xt, tuple(xt.shape[:-1]) + (wt.shape[0] if wt.ndim else 0,), xt.dtype)
    lib.op_gemm_wq(xt._live(), wt._live(), st._live(), _h(zt), _h(bt), yt._live(), raw)
    return y
