"""Exceptions: one DsError hierarchy mirroring the status codes and bands of dsabi.h.

Every exception raised for a failed library call is a :class:`DsError` carrying ``code`` (the
ds_status_t) and ``message`` (ds_last_error() of that call, naming the function, the argument or
config key path and the value). Subclasses follow the common codes and the bands (device,
communication, I/O, configuration); where a Python built-in exception has the same meaning it is
a base too, so ``except KeyError`` or ``except ValueError`` work as they do for dicts and files.
"""

from enum import IntEnum
from typing import Dict, Optional, Type

from ._loader import lib

__all__ = [
    "Status",
    "DsError",
    "AbortedError",
    "InvalidArgumentError",
    "OutOfMemoryError",
    "InvalidHandleError",
    "BufferTooSmallError",
    "UnsupportedError",
    "VersionError",
    "StateError",
    "NotFoundError",
    "TypeMismatchError",
    "InternalError",
    "DeviceError",
    "NoDeviceError",
    "DeviceOutOfMemoryError",
    "DeviceMismatchError",
    "CommError",
    "CommTimeoutError",
    "CommPeerError",
    "CommMismatchError",
    "DsIOError",
    "CorruptDataError",
    "ConfigError",
    "ConfigParseError",
    "UnknownConfigKeyError",
    "ConfigValueError",
    "ConfigBatchError",
    "ConfigUnsupportedError",
    "error_for",
]


class Status(IntEnum):
    """ds_status_t values (enum ds_status_code). New codes may appear: DsError.code is an int."""

    OK = lib.DS_OK
    INPROGRESS = lib.DS_INPROGRESS
    ABORTED = lib.DS_ABORTED
    INVALID_ARG = lib.DS_ERR_INVALID_ARG
    NOMEM = lib.DS_ERR_NOMEM
    INVALID_HANDLE = lib.DS_ERR_INVALID_HANDLE
    BUFFER_TOO_SMALL = lib.DS_ERR_BUFFER_TOO_SMALL
    UNSUPPORTED = lib.DS_ERR_UNSUPPORTED
    VERSION = lib.DS_ERR_VERSION
    STATE = lib.DS_ERR_STATE
    NOT_FOUND = lib.DS_ERR_NOT_FOUND
    TYPE = lib.DS_ERR_TYPE
    INTERNAL = lib.DS_ERR_INTERNAL
    UNKNOWN = lib.DS_ERR_UNKNOWN
    DEVICE = lib.DS_ERR_DEVICE
    NO_DEVICE = lib.DS_ERR_NO_DEVICE
    DEVICE_NOMEM = lib.DS_ERR_DEVICE_NOMEM
    DEVICE_MISMATCH = lib.DS_ERR_DEVICE_MISMATCH
    COMM = lib.DS_ERR_COMM
    COMM_TIMEOUT = lib.DS_ERR_COMM_TIMEOUT
    COMM_PEER = lib.DS_ERR_COMM_PEER
    COMM_MISMATCH = lib.DS_ERR_COMM_MISMATCH
    IO = lib.DS_ERR_IO
    CORRUPT = lib.DS_ERR_CORRUPT
    CONFIG = lib.DS_ERR_CONFIG
    CONFIG_PARSE = lib.DS_ERR_CONFIG_PARSE
    CONFIG_UNKNOWN_KEY = lib.DS_ERR_CONFIG_UNKNOWN_KEY
    CONFIG_VALUE = lib.DS_ERR_CONFIG_VALUE
    CONFIG_BATCH = lib.DS_ERR_CONFIG_BATCH
    CONFIG_UNSUPPORTED = lib.DS_ERR_CONFIG_UNSUPPORTED

    @property
    def description(self) -> str:
        """The library's text for the code (ds_status_str), e.g. "invalid argument"."""
        return lib.status_str(self.value)


class DsError(Exception):
    """A dsabi call failed.

    Attributes:
        code: the ds_status_t the call returned (always set, also for codes this package does not
            know yet).
        message: the library's detailed message (ds_last_error() of the failing call).
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = int(code)
        self.message = message

    @property
    def status(self) -> Optional[Status]:
        """The code as a Status, or None for a code newer than this package."""
        try:
            return Status(self.code)
        except ValueError:
            return None

    def __str__(self) -> str:
        name = self.status.name if self.status is not None else "status"
        return f"{self.message} [{name} {self.code}]"

    def __reduce__(self):
        return type(self), (self.code, self.message)


class AbortedError(DsError):
    """DS_ABORTED: the operation was cancelled on request (a build whose progress callback returned
    False, communication work cancelled by Comm.abort)."""


class InvalidArgumentError(DsError, ValueError):
    """DS_ERR_INVALID_ARG: an argument is NULL, out of range or inconsistent."""


class OutOfMemoryError(DsError, MemoryError):
    """DS_ERR_NOMEM: host memory allocation failed."""


class InvalidHandleError(DsError, ValueError):
    """DS_ERR_INVALID_HANDLE: the object was closed (or the handle is not valid)."""


class BufferTooSmallError(DsError):
    """DS_ERR_BUFFER_TOO_SMALL."""


class UnsupportedError(DsError):
    """DS_ERR_UNSUPPORTED: a valid request that this build or device does not support."""


class VersionError(DsError):
    """DS_ERR_VERSION: an options struct or table from an unknown ABI version."""


class StateError(DsError):
    """DS_ERR_STATE: the object is not in a state that allows this call."""


class NotFoundError(DsError, KeyError):
    """DS_ERR_NOT_FOUND: a named item (config key, symbol, device) does not exist."""


class TypeMismatchError(DsError, TypeError):
    """DS_ERR_TYPE: a value has a different type than requested."""


class InternalError(DsError):
    """DS_ERR_INTERNAL: a bug in dsabi; please report it with the message."""


class DeviceError(DsError):
    """Device band (-100..-199): a device runtime call failed."""


class NoDeviceError(DeviceError):
    """DS_ERR_NO_DEVICE: the requested device type or index is not present."""


class DeviceOutOfMemoryError(DeviceError, MemoryError):
    """DS_ERR_DEVICE_NOMEM: device memory allocation failed."""


class DeviceMismatchError(DeviceError):
    """DS_ERR_DEVICE_MISMATCH: tensors live on devices that the call cannot combine."""


class CommError(DsError):
    """Communication band (-200..-299)."""


class CommTimeoutError(CommError, TimeoutError):
    """DS_ERR_COMM_TIMEOUT: a peer did not answer in time."""


class CommPeerError(CommError):
    """DS_ERR_COMM_PEER: a peer closed its connection or died."""


class CommMismatchError(CommError):
    """DS_ERR_COMM_MISMATCH: ranks disagree on sizes, dtypes or order of operations."""


class DsIOError(DsError, OSError):
    """I/O band (-300..-399): a file or operating-system call failed."""


class CorruptDataError(DsIOError):
    """DS_ERR_CORRUPT: a file is truncated or does not have the expected format."""


class ConfigError(DsError, ValueError):
    """Configuration band (-400..-499): the DeepSpeed config is invalid."""


class ConfigParseError(ConfigError):
    """DS_ERR_CONFIG_PARSE: the text is not valid JSON / hjson (the message has line and column)."""


class UnknownConfigKeyError(ConfigError):
    """DS_ERR_CONFIG_UNKNOWN_KEY: a key is not part of the DeepSpeed schema."""


class ConfigValueError(ConfigError):
    """DS_ERR_CONFIG_VALUE: a value has the wrong type or is out of range."""


class ConfigBatchError(ConfigError):
    """DS_ERR_CONFIG_BATCH: batch size, micro batch, accumulation and world size disagree."""


class ConfigUnsupportedError(ConfigError):
    """DS_ERR_CONFIG_UNSUPPORTED: a DeepSpeed feature that dsabi does not implement is enabled."""


_BY_CODE: Dict[int, Type[DsError]] = {
    Status.ABORTED: AbortedError,
    Status.INVALID_ARG: InvalidArgumentError,
    Status.NOMEM: OutOfMemoryError,
    Status.INVALID_HANDLE: InvalidHandleError,
    Status.BUFFER_TOO_SMALL: BufferTooSmallError,
    Status.UNSUPPORTED: UnsupportedError,
    Status.VERSION: VersionError,
    Status.STATE: StateError,
    Status.NOT_FOUND: NotFoundError,
    Status.TYPE: TypeMismatchError,
    Status.INTERNAL: InternalError,
    Status.NO_DEVICE: NoDeviceError,
    Status.DEVICE_NOMEM: DeviceOutOfMemoryError,
    Status.DEVICE_MISMATCH: DeviceMismatchError,
    Status.COMM_TIMEOUT: CommTimeoutError,
    Status.COMM_PEER: CommPeerError,
    Status.COMM_MISMATCH: CommMismatchError,
    Status.CORRUPT: CorruptDataError,
    Status.CONFIG_PARSE: ConfigParseError,
    Status.CONFIG_UNKNOWN_KEY: UnknownConfigKeyError,
    Status.CONFIG_VALUE: ConfigValueError,
    Status.CONFIG_BATCH: ConfigBatchError,
    Status.CONFIG_UNSUPPORTED: ConfigUnsupportedError,
}

# Bands of dsabi.h, by their first code: -100..-199 device, -200..-299 communication, ...
_BY_BAND: Dict[int, Type[DsError]] = {
    Status.DEVICE: DeviceError,
    Status.COMM: CommError,
    Status.IO: DsIOError,
    Status.CONFIG: ConfigError,
}


def error_for(code: int, message: str) -> DsError:
    """The exception for a failed call: by exact code, else by band, else a plain DsError."""
    cls = _BY_CODE.get(code)
    if cls is None and code <= -100:
        cls = _BY_BAND.get(-100 * (-code // 100))
    return (cls or DsError)(code, message)
