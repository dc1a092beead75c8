"""Zero-copy exchange with NumPy and through DLPack, and who keeps the memory alive."""

import gc
import weakref

import numpy as np
import pytest

import dsabi
from dsabi import DType


def _ptr(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


# ---- NumPy -> dsabi ----------------------------------------------------------------------------


def test_from_numpy_shares_memory():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = dsabi.Tensor.from_numpy(a)
    assert t.data_ptr == a.ctypes.data
    assert (t.shape, t.dtype, t.strides) == ((3, 4), DType.F32, (4, 1))
    t.fill(7.0)
    assert (a == 7.0).all()


def test_from_numpy_keeps_strided_views():
    base = np.arange(20, dtype=np.int64).reshape(4, 5)
    view = base[::2, 1::2]  # shape (2, 2), strides (10, 2) elements
    t = dsabi.Tensor.from_numpy(view)
    assert t.strides == (10, 2) and not t.is_contiguous
    assert t.clone().numpy().tolist() == view.tolist()


def test_from_numpy_keeps_the_array_alive():
    a = np.full(1000, 3.0)
    ref = weakref.ref(a)
    t = dsabi.Tensor.from_numpy(a)
    del a
    gc.collect()
    assert ref() is not None
    assert t.clone().numpy()[999] == 3.0
    t.close()
    gc.collect()
    assert ref() is None


def test_from_numpy_rejects_read_only_and_foreign_dtypes():
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(dsabi.InvalidArgumentError, match="read-only"):
        dsabi.Tensor.from_numpy(ro)
    with pytest.raises(TypeError, match="complex128"):
        dsabi.Tensor.from_numpy(np.zeros(3, dtype=np.complex128))


# ---- dsabi -> NumPy ----------------------------------------------------------------------------


def test_numpy_view_shares_memory_both_ways():
    t = dsabi.Tensor.create((2, 3), dtype="i32")
    a = t.numpy()
    assert _ptr(a) == t.data_ptr and a.dtype == np.int32 and a.flags.writeable
    a[1, 2] = 42
    assert t.clone().numpy()[1, 2] == 42
    t.fill(5)
    assert (a == 5).all()


def test_numpy_view_outlives_the_tensor_handle():
    t = dsabi.Tensor.full((1000,), 1.25)
    a = t.numpy()
    t.close()
    gc.collect()
    assert a[999] == 1.25  # the view holds a DLPack export, which holds the memory


def test_numpy_view_of_wrapped_memory_keeps_the_owner_alive():
    owner = np.full(8, 2.0)
    ref = weakref.ref(owner)
    t = dsabi.Tensor.from_numpy(owner)
    view = t.numpy()
    del owner
    t.close()
    gc.collect()
    assert ref() is not None and view.sum() == 16.0
    del view
    gc.collect()
    assert ref() is None


def test_np_asarray_is_the_zero_copy_view():
    t = dsabi.Tensor.full(5, 2.0, dtype="f64")
    a = np.asarray(t)
    assert _ptr(a) == t.data_ptr and a.tolist() == [2.0] * 5


def test_bf16_view_shows_bit_patterns():
    t = dsabi.Tensor.full((3,), 1.0, dtype="bf16")
    bits = t.numpy()
    assert bits.dtype == np.uint16
    assert bits.tolist() == [0x3F80] * 3  # bf16 1.0 is the top half of f32 1.0 (0x3F800000)


# ---- DLPack --------------------------------------------------------------------------------------


def test_np_from_dlpack_shares_memory():
    t = dsabi.Tensor.full((4, 2), 0.5, dtype="f16")
    a = np.from_dlpack(t)
    assert _ptr(a) == t.data_ptr
    assert a.dtype == np.float16 and a.shape == (4, 2)
    t.fill(2.0)
    assert (a == 2.0).all()


def test_dlpack_device_is_cpu():
    assert dsabi.Tensor.create((1,)).__dlpack_device__() == (1, 0)


def test_from_dlpack_of_numpy_shares_memory():
    a = np.linspace(0.0, 1.0, 5)
    t = dsabi.Tensor.from_dlpack(a)
    assert t.data_ptr == a.ctypes.data and t.dtype is DType.F64
    assert t.numpy().tolist() == a.tolist()


def test_round_trip_through_dlpack_keeps_one_buffer():
    a = np.arange(6, dtype=np.int64)
    t = dsabi.Tensor.from_dlpack(a)
    back = np.from_dlpack(t)  # NumPy marks arrays it gets through DLPack read-only
    assert _ptr(back) == a.ctypes.data
    t.fill(-3)
    assert back.tolist() == [-3] * 6 and a.tolist() == [-3] * 6


def test_dsabi_to_dsabi_through_a_capsule():
    t = dsabi.Tensor.full((6,), 4.0, dtype="i64")
    back = dsabi.Tensor.from_dlpack(t)
    assert back.data_ptr == t.data_ptr
    t.close()  # the export holds the memory; the second handle stays valid
    assert back.numpy().tolist() == [4] * 6


def test_capsule_is_renamed_when_consumed_and_cannot_be_used_twice():
    t = dsabi.Tensor.full((2,), 1.0)
    capsule = t.__dlpack__()
    assert "dltensor" in repr(capsule)
    taken = dsabi.Tensor.from_dlpack(capsule)
    assert "used_dltensor" in repr(capsule)
    assert taken.data_ptr == t.data_ptr
    with pytest.raises(dsabi.InvalidArgumentError, match="already consumed"):
        dsabi.Tensor.from_dlpack(capsule)


def test_unconsumed_capsule_releases_its_export():
    owner = np.ones(4)
    ref = weakref.ref(owner)
    t = dsabi.Tensor.from_numpy(owner)
    capsule = t.__dlpack__()  # holds `owner` through the export
    del owner
    t.close()
    gc.collect()
    assert ref() is not None
    del capsule  # never consumed: its destructor deletes the export
    gc.collect()
    assert ref() is None


def test_cpu_export_rejects_a_stream():
    with pytest.raises(BufferError):
        dsabi.Tensor.create((1,)).__dlpack__(stream=1)


def test_from_dlpack_rejects_other_objects():
    with pytest.raises(dsabi.InvalidArgumentError, match="DLPack capsule"):
        dsabi.Tensor.from_dlpack(object())


def test_torch_shares_memory_through_dlpack():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (python3-torch): DLPack with torch untested")
    t = dsabi.Tensor.full((3,), 2.0)
    x = torch.utils.dlpack.from_dlpack(t)
    assert x.data_ptr() == t.data_ptr
    x.add_(1.0)
    assert t.numpy().tolist() == [3.0] * 3
    y = torch.arange(4, dtype=torch.float32)
    u = dsabi.Tensor.from_dlpack(y)
    assert u.data_ptr == y.data_ptr()
    u.fill(9.0)
    assert y.tolist() == [9.0] * 4
