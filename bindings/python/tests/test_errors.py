"""Failed calls raise DsError subclasses that carry the status code and the library's message."""

import pickle

import pytest

import dsabi
from dsabi import Status


def test_invalid_argument_carries_code_and_message():
    with pytest.raises(dsabi.InvalidArgumentError) as info:
        dsabi.Tensor.create((2, -3))
    err = info.value
    assert err.code == Status.INVALID_ARG == -1
    assert err.status is Status.INVALID_ARG
    assert "ds_tensor_create" in err.message and "shape[1]=-3" in err.message
    assert isinstance(err, ValueError)  # idiomatic catching works too


def test_message_is_the_threads_last_error():
    with pytest.raises(dsabi.DsError) as info:
        dsabi.Tensor.create((1 << 62, 8), dtype="f64")
    assert "larger than 2^63 bytes" in info.value.message
    assert dsabi.last_error() == info.value.message
    dsabi.clear_last_error()
    assert dsabi.last_error() == ""


def test_str_names_status_and_code():
    with pytest.raises(dsabi.DsError) as info:
        dsabi.Config.parse("{", world_size=1)
    assert str(info.value).endswith("[CONFIG_PARSE -401]")


@pytest.mark.parametrize(
    "code, cls",
    [
        (Status.INVALID_HANDLE, dsabi.InvalidHandleError),
        (Status.NOT_FOUND, dsabi.NotFoundError),
        (Status.TYPE, dsabi.TypeMismatchError),
        (Status.NO_DEVICE, dsabi.NoDeviceError),
        (Status.COMM_TIMEOUT, dsabi.CommTimeoutError),
        (Status.CORRUPT, dsabi.CorruptDataError),
        (Status.CONFIG_BATCH, dsabi.ConfigBatchError),
        (-150, dsabi.DeviceError),  # unknown code in the device band
        (-299, dsabi.CommError),
        (-350, dsabi.DsIOError),
        (-499, dsabi.ConfigError),
        (-42, dsabi.DsError),  # unknown general code: the base class, code kept
    ],
)
def test_error_class_by_code_then_band(code, cls):
    err = dsabi._errors.error_for(int(code), "boom")
    assert type(err) is cls
    assert err.code == int(code)


def test_builtin_bases():
    assert issubclass(dsabi.NotFoundError, KeyError)
    assert issubclass(dsabi.TypeMismatchError, TypeError)
    assert issubclass(dsabi.ConfigError, ValueError)
    assert issubclass(dsabi.CommTimeoutError, TimeoutError)
    assert issubclass(dsabi.OutOfMemoryError, MemoryError)


def test_unknown_code_has_no_status_but_keeps_code():
    err = dsabi._errors.error_for(-1234, "from the future")
    assert err.status is None and err.code == -1234
    assert str(err) == "from the future [status -1234]"


def test_errors_pickle_with_code():
    err = pickle.loads(pickle.dumps(dsabi._errors.error_for(-403, "zero_optimization.stage: bad")))
    assert type(err) is dsabi.ConfigValueError
    assert (err.code, err.message) == (-403, "zero_optimization.stage: bad")


def test_status_description_is_the_library_text():
    assert Status.INVALID_ARG.description == "invalid argument"
    assert Status.CONFIG_BATCH.description == "inconsistent batch size configuration"
