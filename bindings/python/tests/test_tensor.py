"""Tensors: creation, properties, fill/copy/clone, wrapping memory, lifetime."""

import ctypes

import pytest

import dsabi
from dsabi import Device, DeviceType, DType, Status


def test_create_is_zero_filled_and_contiguous():
    with dsabi.Tensor.create((2, 3, 4), dtype="f64") as t:
        assert t.shape == (2, 3, 4)
        assert t.strides == (12, 4, 1)
        assert t.ndim == 3 and t.numel == 24 and t.nbytes == 24 * 8
        assert t.dtype is DType.F64 and str(t.dtype) == "f64"
        assert t.device == Device(DeviceType.CPU, 0) and str(t.device) == "cpu:0"
        assert t.is_contiguous
        assert t.numpy().sum() == 0.0


def test_scalar_tensor():
    t = dsabi.Tensor.full((), 2.5, dtype=DType.F32)
    assert t.shape == () and t.numel == 1
    assert float(t.numpy()) == 2.5


@pytest.mark.parametrize(
    "dtype, itemsize", [("f32", 4), ("f16", 2), ("bf16", 2), ("f64", 8), ("i8", 1), ("u8", 1), ("i32", 4), ("i64", 8)]
)
def test_dtype_sizes(dtype, itemsize):
    assert DType.of(dtype).itemsize == itemsize
    assert dsabi.Tensor.create((5,), dtype=dtype).nbytes == 5 * itemsize


def test_unknown_dtype_name():
    with pytest.raises(ValueError, match="unknown dtype name 'float128'"):
        DType.of("float128")


@pytest.mark.parametrize(
    "shape, fragment",
    [
        ((2, -1), "shape[1]=-1 is negative"),
        ((1,) * 9, "ndim=9 is outside [0, 8]"),
    ],
)
def test_invalid_shapes(shape, fragment):
    with pytest.raises(dsabi.InvalidArgumentError) as info:
        dsabi.Tensor.create(shape)
    assert info.value.code == Status.INVALID_ARG
    assert fragment in info.value.message


def test_fill_integer_dtype_needs_integral_value():
    t = dsabi.Tensor.create((3,), dtype="i32")
    t.fill(-7)
    assert t.numpy().tolist() == [-7, -7, -7]
    with pytest.raises(dsabi.InvalidArgumentError, match="not an integer"):
        t.fill(0.5)
    with pytest.raises(dsabi.InvalidArgumentError, match="outside the range"):
        dsabi.Tensor.create((1,), dtype="u8").fill(256)


def test_clone_is_a_deep_copy():
    src = dsabi.Tensor.full((4,), 3.0)
    dup = src.clone()
    src.fill(1.0)
    assert dup.numpy().tolist() == [3.0] * 4
    assert dup.data_ptr != src.data_ptr


def test_copy_from_checks_shape_and_dtype():
    dst = dsabi.Tensor.create((2, 2))
    dst.copy_from(dsabi.Tensor.full((2, 2), 9.0))
    assert dst.numpy().tolist() == [[9.0, 9.0], [9.0, 9.0]]
    with pytest.raises(dsabi.InvalidArgumentError, match="dtype differs"):
        dst.copy_from(dsabi.Tensor.create((2, 2), dtype="f64"))
    with pytest.raises(dsabi.InvalidArgumentError, match="shape differs"):
        dst.copy_from(dsabi.Tensor.create((4,)))


def test_wrap_ctypes_memory_with_strides():
    buf = (ctypes.c_float * 6)(*range(6))
    # Every second element: a strided view of 3 floats.
    t = dsabi.Tensor.wrap(ctypes.addressof(buf), (3,), "f32", strides=(2,), keepalive=buf)
    assert t.strides == (2,) and not t.is_contiguous
    assert t.clone().numpy().tolist() == [0.0, 2.0, 4.0]
    t.fill(-1.0)
    assert list(buf) == [-1.0, 1.0, -1.0, 3.0, -1.0, 5.0]


def test_wrap_rejects_mismatched_strides():
    buf = (ctypes.c_float * 4)()
    with pytest.raises(dsabi.InvalidArgumentError, match="strides has 1 entries but shape has 2"):
        dsabi.Tensor.wrap(ctypes.addressof(buf), (2, 2), "f32", strides=(1,))


def test_cpu_device_info_and_count():
    assert dsabi.device_count("cpu") == 1
    info = Device.parse("cpu").info()
    assert info.device == Device("cpu", 0)
    assert info.multiprocessor_count >= 1
    assert info.total_memory_bytes >= info.free_memory_bytes > 0
    Device("cpu").synchronize()


def test_missing_device_is_no_device_error():
    if dsabi.device_count("cuda") > 0:
        pytest.skip("a CUDA device is present")
    with pytest.raises(dsabi.NoDeviceError) as info:
        dsabi.Tensor.create((2,), device="cuda:0")
    assert info.value.code == Status.NO_DEVICE


def test_device_parsing():
    assert Device.parse("cuda:3") == Device(DeviceType.CUDA, 3)
    assert Device.of("cpu") == Device()
    with pytest.raises(ValueError):
        Device.parse("tpu:0")


def test_closed_tensor_raises_invalid_handle():
    t = dsabi.Tensor.create((2,))
    t.close()
    t.close()  # idempotent
    with pytest.raises(dsabi.InvalidHandleError) as info:
        t.fill(1.0)
    assert info.value.code == Status.INVALID_HANDLE
    with pytest.raises(dsabi.InvalidHandleError):
        dsabi.Tensor.create((2,)).copy_from(t)
