"""Enumerations of dsabi.h, devices and their description."""

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Union

from ._loader import lib

__all__ = [
    "DType",
    "DeviceType",
    "LogLevel",
    "JsonKind",
    "WorldSizeSource",
    "Device",
    "DeviceInfo",
    "DeviceLike",
    "DTypeLike",
    "device_count",
]


class DType(IntEnum):
    """Element types (enum ds_dtype). str() gives the library's name: "f32", "bf16", ..."""

    F32 = lib.DS_DTYPE_F32
    F16 = lib.DS_DTYPE_F16
    BF16 = lib.DS_DTYPE_BF16
    F64 = lib.DS_DTYPE_F64
    I8 = lib.DS_DTYPE_I8
    U8 = lib.DS_DTYPE_U8
    I32 = lib.DS_DTYPE_I32
    I64 = lib.DS_DTYPE_I64
    FP8_E4M3 = lib.DS_DTYPE_FP8_E4M3
    FP8_E5M2 = lib.DS_DTYPE_FP8_E5M2

    @property
    def itemsize(self) -> int:
        """Bytes per element (ds_dtype_size)."""
        return lib.dtype_size(self.value)

    def __str__(self) -> str:
        return lib.dtype_name(self.value)

    @classmethod
    def of(cls, value: "DTypeLike") -> "DType":
        """A DType from a DType, its number, or its library name ("f32", "bf16", ...)."""
        if isinstance(value, str):
            for member in cls:
                if str(member) == value:
                    return member
            raise ValueError(f"unknown dtype name {value!r}; expected one of {[str(m) for m in cls]}")
        return cls(value)


DTypeLike = Union[DType, int, str]


class DeviceType(IntEnum):
    """Device types (enum ds_dev_type); the values are DLPack's DLDeviceType codes."""

    CPU = lib.DS_DEV_CPU
    CUDA = lib.DS_DEV_CUDA

    def __str__(self) -> str:
        return self.name.lower()


class LogLevel(IntEnum):
    """Log levels (enum ds_log_level), most severe first."""

    NONE = lib.DS_LOG_NONE
    ERROR = lib.DS_LOG_ERROR
    WARN = lib.DS_LOG_WARN
    INFO = lib.DS_LOG_INFO
    DEBUG = lib.DS_LOG_DEBUG


class JsonKind(IntEnum):
    """Kinds of config values (enum ds_json_kind)."""

    NULL = lib.DS_JSON_NULL
    BOOL = lib.DS_JSON_BOOL
    NUMBER = lib.DS_JSON_NUMBER
    STRING = lib.DS_JSON_STRING
    ARRAY = lib.DS_JSON_ARRAY
    OBJECT = lib.DS_JSON_OBJECT


class WorldSizeSource(IntEnum):
    """Where the data-parallel world size of a config came from (enum ds_config_world_source)."""

    OPTIONS = lib.DS_WORLD_FROM_OPTIONS
    WORLD_SIZE_ENV = lib.DS_WORLD_FROM_WORLD_SIZE
    OMPI_ENV = lib.DS_WORLD_FROM_OMPI
    SLURM_ENV = lib.DS_WORLD_FROM_SLURM
    DEFAULT = lib.DS_WORLD_DEFAULT


_DEVICE_RE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    """A device: ``Device("cuda", 1)``, ``Device.parse("cuda:1")``; str() gives "cuda:1"."""

    type: DeviceType = DeviceType.CPU
    index: int = 0

    def __post_init__(self):
        kind = DeviceType[self.type.upper()] if isinstance(self.type, str) else DeviceType(self.type)
        object.__setattr__(self, "type", kind)

    @classmethod
    def parse(cls, text: str) -> "Device":
        match = _DEVICE_RE.match(text.strip().lower())
        if not match:
            raise ValueError(f"cannot parse device {text!r}: expected 'cpu', 'cuda' or 'cuda:<index>'")
        return cls(match.group(1), int(match.group(2) or 0))

    @classmethod
    def of(cls, value: "DeviceLike") -> "Device":
        """A Device from a Device, a string ("cuda:0") or a DeviceType."""
        if isinstance(value, Device):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls(DeviceType(value), 0)

    def info(self) -> "DeviceInfo":
        """Describe the device (ds_dev_get_info); NoDeviceError if it is not present."""
        raw = lib.DevInfo(self.type.value, self.index)
        return DeviceInfo(
            device=Device(DeviceType(raw.device_type), raw.device_index),
            name=raw.name,
            total_memory_bytes=raw.total_memory_bytes,
            free_memory_bytes=raw.free_memory_bytes,
            compute_capability=(raw.compute_capability_major, raw.compute_capability_minor),
            multiprocessor_count=raw.multiprocessor_count,
        )

    def synchronize(self) -> None:
        """Wait until all work queued on the device has finished (a no-op on the CPU)."""
        lib.dev_synchronize(self.type.value, self.index)

    def __str__(self) -> str:
        return f"{self.type}:{self.index}"


DeviceLike = Union[Device, str, DeviceType]


@dataclass(frozen=True)
class DeviceInfo:
    """What ds_dev_get_info reports. compute_capability is (0, 0) on the CPU;
    multiprocessor_count counts CUDA SMs, or logical CPU cores."""

    device: Device
    name: str
    total_memory_bytes: int
    free_memory_bytes: int
    compute_capability: tuple
    multiprocessor_count: int


def device_count(device_type: Union[DeviceType, str] = DeviceType.CUDA) -> int:
    """Number of devices of a type: 1 for the CPU; visible GPUs for CUDA (0 without the backend)."""
    kind = DeviceType[device_type.upper()] if isinstance(device_type, str) else DeviceType(device_type)
    return lib.dev_count(kind.value)
