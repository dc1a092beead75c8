"""Communication: communicators, collectives, point to point (ds_comm_*, ds_work_*).

    with dsabi.Comm() as comm:                         # RANK, WORLD_SIZE, MASTER_ADDR... (dsrun, torchrun)
        grads = numpy.ones(1024, dtype=numpy.float32)
        comm.all_reduce(grads, op="avg")               # in place, synchronous
        work = comm.all_gather(shard, full, async_op=True)
        ...                                            # overlap
        work.wait()

Tensors are :class:`dsabi.Tensor` objects, NumPy arrays or any DLPack producer (a PyTorch CPU
tensor, for example); all are used in place, without copies. Synchronous calls return their
output argument; with ``async_op=True`` they return a :class:`Work`, which keeps every tensor and
array it was given alive until the work is complete. Calls release the GIL.
"""

import json
from enum import IntEnum
from typing import Any, List, Optional, Sequence, Union

from ._config import Config
from ._handle import Resource, enum_of
from ._loader import lib
from ._tensor import Tensor

__all__ = ["ReduceOp", "CommBackend", "CommSource", "Comm", "Work"]


class ReduceOp(IntEnum):
    """enum ds_reduce_op. AVG on integers truncates toward zero."""

    SUM = lib.DS_REDUCE_SUM
    AVG = lib.DS_REDUCE_AVG
    MAX = lib.DS_REDUCE_MAX
    MIN = lib.DS_REDUCE_MIN
    PROD = lib.DS_REDUCE_PROD


class CommBackend(IntEnum):
    """enum ds_comm_backend: AUTO picks Gloo for CPU tensors and NCCL for CUDA tensors."""

    AUTO = lib.DS_COMM_BACKEND_AUTO
    GLOO = lib.DS_COMM_BACKEND_GLOO
    NCCL = lib.DS_COMM_BACKEND_NCCL


class CommSource(IntEnum):
    """Where the rank and world size came from (``Comm.info["source"]`` names it)."""

    OPTIONS = lib.DS_COMM_SOURCE_OPTIONS
    TORCHRUN_ENV = lib.DS_COMM_SOURCE_TORCHRUN_ENV
    OMPI_ENV = lib.DS_COMM_SOURCE_OMPI_ENV
    SLURM_ENV = lib.DS_COMM_SOURCE_SLURM_ENV
    DEFAULT = lib.DS_COMM_SOURCE_DEFAULT


TensorLike = Any  # dsabi.Tensor, numpy.ndarray, or an object with __dlpack__
OpLike = Union[ReduceOp, str]


def _as_tensor(x: TensorLike) -> Tensor:
    """A Tensor on x's memory, without copying."""
    if isinstance(x, Tensor):
        return x
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return Tensor.from_numpy(x)
    except ImportError:  # pragma: no cover - NumPy is optional for DLPack users
        pass
    if hasattr(x, "__dlpack__"):
        return Tensor.from_dlpack(x)
    raise TypeError(f"expected a dsabi.Tensor, a numpy.ndarray or a DLPack producer, got {type(x).__name__}")


class Work:
    """Queued communication (``async_op=True``). It holds the tensors of the call (and the arrays
    under them) until the work is complete; the communicator holds unfinished work, so dropping a
    Work early is safe."""

    def __init__(self, handle, keepalive: List[Any], result: Any):
        self._handle = handle
        self._keepalive = keepalive
        self._result = result
        self._done = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the work finishes: True when it completed, False when timeout (seconds)
        expired first. A failed work raises its error (CommError, CommPeerError, ...), an aborted
        one AbortedError."""
        if self._done:
            return True
        timeout_ms = -1 if timeout is None else max(0, int(timeout * 1000))
        try:
            finished = self._handle.wait(timeout_ms)
        except Exception:
            self._finish()
            raise
        if finished:
            self._finish()
        return finished

    def test(self) -> bool:
        """Whether the work has finished (then wait() returns at once)."""
        if not self._done and self._handle.test():
            self._finish()
        return self._done

    @property
    def result(self) -> Any:
        """The call's output argument (what the synchronous call would have returned); read it
        after wait()."""
        return self._result

    def _finish(self) -> None:
        self._done = True
        self._keepalive = []

    def __repr__(self) -> str:
        return f"<dsabi.Work {'done' if self._done else 'pending'}>"


class Comm(Resource):
    """A communicator: the ranks of a job, or a group split from them.

    ``Comm()`` reads the standard environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT as dsrun, torchrun and the DeepSpeed launcher set them; Open MPI and Slurm
    variables as fallbacks) and blocks until every rank has arrived. Keyword arguments override the
    environment: rank and world_size (together), local_rank, local_world_size, master_addr,
    master_port, timeout (seconds), backend, check_mismatch (agreement checks before collectives),
    store_dir / store_prefix (a file-store rendezvous), bind_addr, and config (its comms_logger
    block). A job of one process needs no environment at all.

    Every rank must call the same collectives in the same order with matching tensors. A failed
    peer makes calls raise CommPeerError or CommTimeoutError within the timeout; the communicator is
    then spent (StateError) and should be closed.
    """

    _kind = "Comm"

    def __init__(
        self,
        *,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        local_rank: Optional[int] = None,
        local_world_size: Optional[int] = None,
        master_addr: Optional[str] = None,
        master_port: Optional[int] = None,
        timeout: Optional[float] = None,
        backend: Union[CommBackend, str] = CommBackend.AUTO,
        check_mismatch: Optional[bool] = None,
        store_dir: Optional[str] = None,
        store_prefix: Optional[str] = None,
        bind_addr: Optional[str] = None,
        config: Optional[Config] = None,
    ):
        opts = lib.CommOptions()
        for name, value in (
            ("rank", rank),
            ("world_size", world_size),
            ("local_rank", local_rank),
            ("local_world_size", local_world_size),
            ("master_port", master_port),
            ("check_mismatch", check_mismatch),
        ):
            if value is not None:
                setattr(opts, name, int(value))
        if timeout is not None:
            opts.timeout_ms = max(1, int(timeout * 1000))
        opts.backend = enum_of(CommBackend, backend)
        cfg = config._live() if config is not None else None
        self._adopt(lib.CommHandle.create(opts, master_addr, store_dir, store_prefix, bind_addr, cfg))

    @classmethod
    def _wrap(cls, handle) -> "Comm":
        comm = cls.__new__(cls)
        comm._adopt(handle)
        return comm

    def _adopt(self, handle) -> None:
        Resource.__init__(self, handle)
        self._inflight: List[Work] = []
        self._rank = handle.rank()
        self._world_size = handle.world_size()
        self._local_rank = handle.local_rank()

    def close(self) -> None:
        """Leave the job: waits for queued work (bounded by the timeout), then releases the handle
        and what the work held. Groups split from this communicator keep it alive."""
        super().close()
        self._inflight = []

    def __del__(self):
        # Release the handle (which waits for queued work) before the arrays that work uses.
        if getattr(self, "_handle", None) is not None:
            self.close()

    # ---- who is who -------------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def local_rank(self) -> int:
        return self._local_rank

    @property
    def info(self) -> dict:
        """What was resolved: rank, world_size, source, master_addr / port, store, timeout_ms,
        backends, global_ranks (of a group), comms_logger, state..."""
        return json.loads(self._live().info_json())

    def split(self, color: Optional[int], key: int = 0) -> Optional["Comm"]:
        """Collective: ranks passing the same color form a group, ordered by key then rank. color
        None (or negative) joins no group and gets None."""
        handle = self._live().split(lib.DS_COMM_SPLIT_NONE if color is None else color, key)
        return None if handle is None else Comm._wrap(handle)

    def abort(self) -> None:
        """Cancel queued and in-flight work (it fails with AbortedError); later calls raise
        StateError. Thread-safe: use it when a peer failed."""
        self._live().abort()

    # ---- collectives ------------------------------------------------------------------------------

    def all_reduce(self, tensor: TensorLike, op: OpLike = ReduceOp.SUM, *, async_op: bool = False):
        """Reduce tensor over all ranks, in place."""
        t = _as_tensor(tensor)
        return self._run(self._live().all_reduce(t._live(), enum_of(ReduceOp, op), async_op), [t, tensor], tensor)

    def broadcast(self, tensor: TensorLike, root: int = 0, *, async_op: bool = False):
        """Copy root's tensor to every rank, in place."""
        t = _as_tensor(tensor)
        return self._run(self._live().broadcast(t._live(), root, async_op), [t, tensor], tensor)

    def reduce(self, tensor: TensorLike, root: int = 0, op: OpLike = ReduceOp.SUM, *, async_op: bool = False):
        """Reduce onto root's tensor; the other ranks' tensor is left unspecified."""
        t = _as_tensor(tensor)
        return self._run(self._live().reduce(t._live(), enum_of(ReduceOp, op), root, async_op), [t, tensor], tensor)

    def all_gather(self, input: TensorLike, output: TensorLike, *, async_op: bool = False):
        """Every rank's input, concatenated in rank order, into output (world_size x input's
        elements)."""
        a, b = _as_tensor(input), _as_tensor(output)
        return self._run(self._live().all_gather(a._live(), b._live(), async_op), [a, b, input, output], output)

    def all_gather_list(self, input: TensorLike, outputs: Sequence[TensorLike], *, async_op: bool = False):
        """Rank r's input into outputs[r] (one output per rank)."""
        a = _as_tensor(input)
        outs = [_as_tensor(o) for o in outputs]
        work = self._live().all_gather_list(a._live(), [o._live() for o in outs], async_op)
        return self._run(work, [a, input, outs, outputs], outputs)

    def reduce_scatter(self, input: TensorLike, output: TensorLike, op: OpLike = ReduceOp.SUM, *, async_op: bool = False):
        """Reduce input (world_size chunks of output's size) over all ranks; rank r gets chunk r."""
        a, b = _as_tensor(input), _as_tensor(output)
        work = self._live().reduce_scatter(a._live(), b._live(), enum_of(ReduceOp, op), async_op)
        return self._run(work, [a, b, input, output], output)

    def all_to_all(self, input: TensorLike, output: TensorLike, *, async_op: bool = False):
        """Chunk r of input goes to rank r; chunk r of output comes from rank r."""
        a, b = _as_tensor(input), _as_tensor(output)
        return self._run(self._live().all_to_all(a._live(), b._live(), async_op), [a, b, input, output], output)

    def barrier(self, *, async_op: bool = False):
        """Wait until every rank has arrived."""
        return self._run(self._live().barrier(async_op), [], None)

    # ---- point to point ---------------------------------------------------------------------------

    def send(self, tensor: TensorLike, dst: int, tag: int = 0, *, async_op: bool = False):
        """Send tensor to rank dst. Messages between two ranks with one tag arrive in order. A
        synchronous send returns when the peer has received it."""
        t = _as_tensor(tensor)
        return self._run(self._live().send(t._live(), dst, tag, async_op), [t, tensor], tensor)

    def recv(self, tensor: TensorLike, src: int, tag: int = 0, *, async_op: bool = False):
        """Receive into tensor from rank src (same dtype and size as what it sends)."""
        t = _as_tensor(tensor)
        return self._run(self._live().recv(t._live(), src, tag, async_op), [t, tensor], tensor)

    # ---- comms logger -----------------------------------------------------------------------------

    def log_summary(self, as_json: bool = False) -> Union[str, dict]:
        """This rank's comms logger summary (config block comms_logger): DeepSpeed's text table,
        or with as_json the same as a dict ({"rank", "world_size", "ops": [...]})."""
        text = self._live().log_summary(as_json)
        return json.loads(text) if as_json else text

    def log_reset(self) -> None:
        self._live().log_reset()

    def _run(self, work_handle, keepalive: List[Any], result: Any):
        """The synchronous result, or a Work that keeps its tensors until it is complete."""
        # Unfinished work stays referenced here, so that its arrays outlive it even when the caller
        # drops the Work; finished work is let go.
        if self._inflight:
            self._inflight = [w for w in self._inflight if not w.test()]
        if work_handle is None:
            return result
        work = Work(work_handle, keepalive, result)
        self._inflight.append(work)
        return work

    def __repr__(self) -> str:
        if self.closed:
            return "<dsabi.Comm (closed)>"
        return f"<dsabi.Comm rank={self._rank} world_size={self._world_size}>"
