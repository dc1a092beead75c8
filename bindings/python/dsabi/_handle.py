"""The lifetime protocol shared by the classes that own a library handle."""

from enum import IntEnum
from typing import Type, TypeVar, Union

from ._errors import InvalidHandleError, Status

__all__ = ["Resource", "enum_of"]

E = TypeVar("E", bound=IntEnum)


class Resource:
    """Owns one handle of the SWIG layer: :meth:`close` releases it at once (garbage collection does
    otherwise), the object is a context manager, and methods of a closed object raise
    InvalidHandleError."""

    _kind = "object"
    _handle = None

    def __init__(self, handle):
        self._handle = handle

    def close(self) -> None:
        """Release the handle now. Idempotent; any later use raises InvalidHandleError."""
        handle, self._handle = self._handle, None
        if handle is not None:
            type(handle).__swig_destroy__(handle)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self):
        self._live()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _live(self):
        if self._handle is None:
            raise InvalidHandleError(Status.INVALID_HANDLE, f"this {self._kind} is closed")
        return self._handle


def enum_of(cls: Type[E], value: Union[E, int, str]) -> E:
    """A member of an IntEnum from itself, its value, or its name in any case ("sum", "SUM")."""
    if isinstance(value, str):
        try:
            return cls[value.upper()]
        except KeyError:
            names = ", ".join(m.name.lower() for m in cls)
            raise ValueError(f"unknown {cls.__name__} {value!r}; expected one of {names}") from None
    return cls(value)
