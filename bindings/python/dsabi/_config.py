"""DeepSpeed configuration: parse, validate, query."""

import json
import os
from dataclasses import dataclass
from typing import Any, List, Mapping, Union

from ._errors import NotFoundError
from ._handle import Resource
from ._loader import lib
from ._types import JsonKind, WorldSizeSource

__all__ = ["Config", "Diagnostic"]


@dataclass(frozen=True)
class Diagnostic:
    """A warning or note found while validating (ds_config_query_diagnostics)."""

    severity: str  # "warning" or "info"
    kind: str  # "unknown_key", "deprecated", "unsupported", "auto", ...
    path: str  # key path, "" for the whole config
    message: str


class Config(Resource):
    """A parsed, validated DeepSpeed config with every default filled in (immutable).

    Create one with :meth:`parse` or :meth:`load`; use it as a context manager or call
    :meth:`close` to release it at once (it is also released when garbage-collected). Values are
    addressed by key paths such as ``"zero_optimization.stage"`` or
    ``"optimizer.params.betas[1]"``::

        with dsabi.Config.parse(text, world_size=4) as cfg:
            micro = cfg.get_int("train_micro_batch_size_per_gpu")
            stage = cfg["zero_optimization.stage"]

    Invalid configs raise a :class:`ConfigError` subclass whose message lists every problem with
    its key path; failed lookups raise :class:`NotFoundError` (a KeyError) or
    :class:`TypeMismatchError` (a TypeError).
    """

    _kind = "Config"

    def __init__(self, handle):
        # Private: use Config.parse or Config.load.
        super().__init__(handle)

    # ---- creation -----------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        text: Union[str, bytes, Mapping[str, Any]],
        *,
        world_size: int = 0,
        strict: bool = False,
        accept_auto: bool = True,
    ) -> "Config":
        """Parse and validate a config given as JSON/hjson text or as a dict.

        world_size: the data-parallel world size; 0 takes $WORLD_SIZE, $OMPI_COMM_WORLD_SIZE,
            $SLURM_NTASKS, else 1.
        strict: make unknown top-level keys and unsupported features errors.
        accept_auto: let "auto" values mean "use the default / derive it".
        """
        if isinstance(text, Mapping):
            text = json.dumps(text)
        elif isinstance(text, bytes):
            text = text.decode("utf-8")
        return cls(lib.ConfigHandle.parse(text, world_size, int(strict), int(accept_auto)))

    @classmethod
    def load(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        world_size: int = 0,
        strict: bool = False,
        accept_auto: bool = True,
    ) -> "Config":
        """Like :meth:`parse`, reading the file at path (messages start with the path)."""
        return cls(lib.ConfigHandle.load_file(os.fspath(path), world_size, int(strict), int(accept_auto)))

    # ---- typed getters ------------------------------------------------------------------------

    def get_int(self, path: str) -> int:
        """An integer value (TypeMismatchError for other kinds and for non-integral numbers)."""
        return self._live().get_i64(path)

    def get_float(self, path: str) -> float:
        """A number as float."""
        return self._live().get_f64(path)

    def get_bool(self, path: str) -> bool:
        return self._live().get_bool(path)

    def get_str(self, path: str) -> str:
        return self._live().get_str(path)

    def count(self, path: str) -> int:
        """Number of elements of an array or members of an object."""
        return self._live().get_count(path)

    def kind(self, path: str) -> JsonKind:
        """The JSON kind of the value at path."""
        return JsonKind(self._live().get_kind(path))

    # ---- mapping-style access -----------------------------------------------------------------

    def __getitem__(self, path: str) -> Any:
        """The value at path as a Python object (objects become dicts, arrays lists)."""
        return json.loads(self.to_json(path))

    def get(self, path: str, default: Any = None) -> Any:
        """The value at path, or default if there is no such key."""
        try:
            return self[path]
        except NotFoundError:
            return default

    def __contains__(self, path: str) -> bool:
        try:
            self.kind(path)
        except NotFoundError:
            return False
        return True

    # ---- whole config -------------------------------------------------------------------------

    def to_json(self, path: str = "", *, pretty: bool = False) -> str:
        """The normalised config (or the subtree at path) as JSON, every default filled in."""
        return self._live().to_json(path, pretty)

    def to_dict(self) -> dict:
        return json.loads(self.to_json())

    @property
    def diagnostics(self) -> List[Diagnostic]:
        """Warnings and notes of validation (unknown keys, deprecated keys, "auto" values...)."""
        entries = json.loads(self._live().diagnostics())
        return [Diagnostic(d["severity"], d["kind"], d["path"], d["message"]) for d in entries]

    @property
    def world_size(self) -> int:
        """The data-parallel world size the batch-size rule used."""
        return self._live().world_size()

    @property
    def world_size_source(self) -> WorldSizeSource:
        return WorldSizeSource(self._live().world_size_source())

    def __repr__(self) -> str:
        if self._handle is None:
            return "<dsabi.Config (closed)>"
        return f"<dsabi.Config world_size={self.world_size}>"

