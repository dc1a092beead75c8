"""Tensors, and their exchange with NumPy and DLPack consumers (PyTorch, JAX, CuPy...)."""

import sys
from typing import Any, List, Optional, Sequence, Tuple, Union

from ._errors import DeviceMismatchError, InvalidArgumentError, Status
from ._handle import Resource
from ._loader import lib
from ._types import Device, DeviceLike, DeviceType, DType, DTypeLike

__all__ = ["Tensor"]

# dtypes without a NumPy / DLPack 0.6 equivalent: numpy() shows their bit patterns.
_RAW_BITS = {DType.BF16: "uint16", DType.FP8_E4M3: "uint8", DType.FP8_E5M2: "uint8"}

_NUMPY_NAMES = {
    DType.F32: "float32",
    DType.F16: "float16",
    DType.F64: "float64",
    DType.I8: "int8",
    DType.U8: "uint8",
    DType.I32: "int32",
    DType.I64: "int64",
}


class _ArrayView:
    """What np.asarray turns into a view on tensor memory. It holds an unconsumed DLPack capsule,
    which keeps the memory alive until the last array using it is gone."""

    def __init__(self, capsule, interface):
        self._capsule = capsule
        self.__array_interface__ = interface


class Tensor(Resource):
    """An n-dimensional view (dtype, shape, strides, device) on memory that the library owns,
    borrows from Python (:meth:`wrap`, :meth:`from_numpy`) or took over through DLPack.

    Tensors are context managers; :meth:`close` releases the handle at once (garbage collection
    does it otherwise). Memory shared with NumPy arrays or DLPack consumers stays valid until they
    are gone too.
    """

    def __init__(self, handle, keepalive: Any = None):
        # Private: use create, wrap, from_numpy or from_dlpack.
        self._handle = handle
        # The Python object owning borrowed memory; exports carry it along (dsabi_python.i).
        self._keepalive = keepalive

    # ---- creation -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, shape: Union[int, Sequence[int]], dtype: DTypeLike = DType.F32, device: DeviceLike = "cpu"
    ) -> "Tensor":
        """A new contiguous tensor owned by the library, filled with zeros. shape () is a scalar."""
        dev = Device.of(device)
        return cls(lib.TensorHandle.create(DType.of(dtype).value, _as_shape(shape), dev.type.value, dev.index))

    @classmethod
    def full(
        cls, shape: Union[int, Sequence[int]], value: float, dtype: DTypeLike = DType.F32, device: DeviceLike = "cpu"
    ) -> "Tensor":
        """create() followed by fill(value)."""
        return cls.create(shape, dtype, device).fill(value)

    @classmethod
    def wrap(
        cls,
        address: int,
        shape: Union[int, Sequence[int]],
        dtype: DTypeLike,
        *,
        strides: Optional[Sequence[int]] = None,
        device: DeviceLike = "cpu",
        keepalive: Any = None,
    ) -> "Tensor":
        """A tensor on memory at ``address`` without copying (ds_tensor_wrap). strides are in
        elements (None: C-contiguous). The memory must stay valid while the tensor and anything
        exported from it live: pass its owner as ``keepalive`` and it is kept for exactly that
        long."""
        dev = Device.of(device)
        handle = lib.TensorHandle.wrap(
            int(address), DType.of(dtype).value, _as_shape(shape), strides, dev.type.value, dev.index
        )
        return cls(handle, keepalive)

    @classmethod
    def from_numpy(cls, array) -> "Tensor":
        """A tensor sharing a writable NumPy array's memory (zero-copy); the array is kept alive."""
        import numpy as np

        if not isinstance(array, np.ndarray):
            raise TypeError(f"expected a numpy.ndarray, got {type(array).__name__}")
        dtype = _dtype_of_numpy(array.dtype)
        if not array.flags.writeable:
            raise InvalidArgumentError(
                Status.INVALID_ARG, "the array is read-only, but dsabi tensors are writable; pass a copy"
            )
        itemsize = array.dtype.itemsize
        if any(s % itemsize for s in array.strides):
            raise InvalidArgumentError(
                Status.INVALID_ARG, f"strides {array.strides} are not multiples of the item size {itemsize}"
            )
        strides = [s // itemsize for s in array.strides]
        return cls.wrap(array.ctypes.data, array.shape, dtype, strides=strides, keepalive=array)

    @classmethod
    def from_dlpack(cls, source) -> "Tensor":
        """Take a tensor from any DLPack producer (an object with ``__dlpack__``, or a "dltensor"
        capsule), sharing its memory. The producer's memory is released when the last dsabi
        tensor using it is gone."""
        capsule = source.__dlpack__() if hasattr(source, "__dlpack__") else source
        return cls(lib.from_dlpack_capsule(capsule))

    # ---- lifetime -----------------------------------------------------------------------------

    _kind = "Tensor"

    def close(self) -> None:
        """Release the handle now. Idempotent; any later use raises InvalidHandleError."""
        self._keepalive = None
        super().close()

    # ---- properties ---------------------------------------------------------------------------

    @property
    def dtype(self) -> DType:
        return DType(self._live().dtype())

    @property
    def ndim(self) -> int:
        return self._live().ndim()

    @property
    def shape(self) -> Tuple[int, ...]:
        h = self._live()
        return tuple(h.dim(i) for i in range(h.ndim()))

    @property
    def strides(self) -> Tuple[int, ...]:
        """Strides in elements."""
        h = self._live()
        return tuple(h.stride(i) for i in range(h.ndim()))

    @property
    def numel(self) -> int:
        return self._live().numel()

    @property
    def nbytes(self) -> int:
        return self._live().nbytes()

    @property
    def data_ptr(self) -> int:
        """Address of the first element."""
        return self._live().data_ptr()

    @property
    def device(self) -> Device:
        h = self._live()
        return Device(DeviceType(h.device_type()), h.device_index())

    @property
    def is_contiguous(self) -> bool:
        return self._live().is_contiguous()

    # ---- operations ---------------------------------------------------------------------------

    def fill(self, value: float) -> "Tensor":
        """Set every element to value (round to nearest even for f16/bf16; integer dtypes need an
        integral value in range). Returns self."""
        self._live().fill(float(value))
        return self

    def copy_from(self, src: "Tensor") -> "Tensor":
        """Copy src into this tensor (same dtype and shape, any devices). Returns self."""
        self._live().copy_from(src._live())
        return self

    def clone(self, device: Optional[DeviceLike] = None) -> "Tensor":
        """A new contiguous, library-owned copy on device (default: this tensor's device)."""
        dev = self.device if device is None else Device.of(device)
        return Tensor(self._live().clone(dev.type.value, dev.index))

    # ---- NumPy and DLPack ---------------------------------------------------------------------

    def numpy(self):
        """A writable NumPy array sharing this CPU tensor's memory (zero-copy). bf16 and fp8
        tensors appear as their bit patterns (uint16 / uint8): NumPy has no such types."""
        import numpy as np

        h = self._live()
        if h.device_type() != DeviceType.CPU:
            raise DeviceMismatchError(
                Status.DEVICE_MISMATCH, f"numpy() needs a CPU tensor, this one is on {self.device}; clone('cpu') first"
            )
        dtype = self.dtype
        typestr = np.dtype(_RAW_BITS.get(dtype) or _NUMPY_NAMES[dtype]).str
        if self.numel == 0:
            return np.empty(self.shape, dtype=typestr)
        itemsize = dtype.itemsize
        capsule = lib.to_dlpack_capsule(h, self._keepalive, dtype in _RAW_BITS)
        interface = {
            "version": 3,
            "shape": self.shape,
            "typestr": typestr,
            "data": (h.data_ptr(), False),
            "strides": tuple(s * itemsize for s in self.strides),
        }
        return np.asarray(_ArrayView(capsule, interface))

    def __array__(self, dtype=None):
        """np.asarray(tensor): the zero-copy view of numpy() (a copy if dtype asks for another type)."""
        view = self.numpy()
        return view if dtype is None else view.astype(dtype, copy=False)

    def __dlpack__(self, *, stream: Optional[int] = None):
        """Export as a DLPack capsule sharing this tensor's memory (the array API protocol)."""
        h = self._live()
        if h.device_type() == DeviceType.CPU:
            if stream is not None:
                raise BufferError(f"stream must be None for a CPU tensor, got {stream!r}")
        else:
            # Work may be queued on the device: finish it, so any consumer stream sees the data.
            self.device.synchronize()
        return lib.to_dlpack_capsule(h, self._keepalive, False)

    def __dlpack_device__(self) -> Tuple[int, int]:
        dev = self.device
        return int(dev.type), dev.index

    def __repr__(self) -> str:
        if self._handle is None:
            return "<dsabi.Tensor (closed)>"
        return f"<dsabi.Tensor shape={self.shape} dtype={self.dtype} device={self.device}>"


def _as_shape(shape: Union[int, Sequence[int]]) -> List[int]:
    return [shape] if isinstance(shape, int) else list(shape)


def _dtype_of_numpy(np_dtype) -> DType:
    if np_dtype.byteorder not in ("=", "|", "<" if sys.byteorder == "little" else ">"):
        raise TypeError(f"dtype {np_dtype} is not in native byte order")
    for dtype, name in _NUMPY_NAMES.items():
        if np_dtype.name == name:
            return dtype
    raise TypeError(f"NumPy dtype {np_dtype} has no dsabi equivalent; supported: {sorted(_NUMPY_NAMES.values())}")
