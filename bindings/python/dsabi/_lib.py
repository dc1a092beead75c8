"""The library as a whole: versions, build information, initialisation, logging, errors."""

import json
from typing import Callable, Optional

from ._loader import lib
from ._types import LogLevel

__all__ = [
    "version",
    "version_number",
    "build_info",
    "init",
    "shutdown",
    "set_log",
    "set_log_level",
    "last_error",
    "clear_last_error",
    "proc_address",
]

LogCallback = Callable[[LogLevel, str], None]


def version() -> str:
    """Version of the loaded library, e.g. "0.1.0"."""
    return lib.version_string()


def version_number() -> int:
    """major * 10000 + minor * 100 + patch of the loaded library."""
    return lib.version_number()


def build_info() -> dict:
    """How the library was built and what it found at run time: version, compiler, features,
    dependency versions, whether the CUDA backend is loaded (and why not)."""
    return json.loads(lib.lib_build_info())


def init(log_level: Optional[LogLevel] = None, load_cuda: bool = True, cuda_backend_path: Optional[str] = None) -> None:
    """Initialise the library with options. Optional: any call initialises it with the defaults,
    and only the first initialisation has an effect.

    log_level: None takes $DSABI_LOG_LEVEL, else WARN. load_cuda: False stays CPU-only.
    cuda_backend_path: None takes $DSABI_CUDA_BACKEND, else libdsabi_cuda.so next to libdsabi.
    """
    level = lib.DS_UNSET_I32 if log_level is None else int(log_level)
    lib.lib_init(level, int(load_cuda), cuda_backend_path)


def shutdown() -> None:
    """Release global resources and unload backends (StateError while CUDA tensors live)."""
    lib.lib_shutdown()


def set_log(callback: Optional[LogCallback], level: LogLevel = LogLevel.INFO) -> None:
    """Send library messages of ``level`` or more severe to ``callback(level, message)``, or back
    to stderr with callback None. The callback runs synchronously on the thread that logs (with
    the GIL taken for it) and must not call dsabi; exceptions it raises are reported as
    unraisable. Process-global."""
    if callback is None:
        lib.set_log(None, int(level))
        return

    def forward(raw_level: int, message: str) -> None:
        callback(LogLevel(raw_level), message)

    lib.set_log(forward, int(level))


def set_log_level(level: LogLevel) -> None:
    """Log to stderr (the default sink) at ``level`` or more severe; replaces a set_log callback."""
    lib.lib_set_log_level(int(level))


def last_error() -> str:
    """Message of the most recent failing call on this thread ("" if none)."""
    return lib.last_error()


def clear_last_error() -> None:
    lib.last_error_clear()


def proc_address(name: str) -> int:
    """Address of an exported dsabi function (ds_get_proc_address), for ctypes users."""
    return lib.get_proc_address(name)
