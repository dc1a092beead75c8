"""The data pipeline: token datasets, tokenizers, the distributed sampler, curriculum learning and
the prefetching loader (ds_data_*, ds_sampler_*).

    dsabi.build_dataset("train.dst", ["corpus.txt"], split="paragraph", append_eot=True)
    with dsabi.TokenDataset.open("train.dst") as data, \\
         dsabi.DataLoader(data, config=cfg, seq_len=1025, window_stride=1024) as loader:
        for batch in loader:                       # one epoch; the next `for` runs the next one
            tokens = batch.tokens.numpy()          # [B, T] int32, zero-copy
            x = torch.from_dlpack(batch.tokens)    # or any DLPack consumer, zero-copy

Arrays come back as NumPy arrays that share the library's memory (token ids int32, sample
indices int64); arrays go in as anything ``numpy.asarray`` accepts (copied only when the dtype or
layout differs). Calls release the GIL, and loaders prepare batches on their own threads.
"""

import json
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

from ._config import Config
from ._errors import NotFoundError
from ._handle import Resource, enum_of
from ._loader import lib
from ._tensor import Tensor
from ._types import DType

__all__ = [
    "TokenizerKind",
    "Split",
    "Verify",
    "Schedule",
    "Floor",
    "DifficultyType",
    "LrScaling",
    "PickingOrder",
    "DataMode",
    "Field",
    "Tokenizer",
    "DatasetWriter",
    "TokenDataset",
    "DatasetInfo",
    "BuildProgress",
    "BuildStats",
    "build_dataset",
    "write_metric",
    "scale_lr",
    "DistributedSampler",
    "Curriculum",
    "DataLoader",
    "Batch",
    "BatchInfo",
    "Cursor",
]

PathLike = Union[str, "os.PathLike[str]"]


# ---- enumerations ---------------------------------------------------------------------------------


class TokenizerKind(IntEnum):
    """enum ds_data_tokenizer_kind."""

    BYTES = lib.DS_DATA_TOKENIZER_BYTES
    GPT2 = lib.DS_DATA_TOKENIZER_GPT2


class Split(IntEnum):
    """How build_dataset splits text into documents (enum ds_data_split)."""

    FILE = lib.DS_DATA_SPLIT_FILE
    LINE = lib.DS_DATA_SPLIT_LINE
    PARAGRAPH = lib.DS_DATA_SPLIT_PARAGRAPH
    DELIMITER = lib.DS_DATA_SPLIT_DELIMITER


class Verify(IntEnum):
    """How much TokenDataset.open checks (enum ds_data_verify)."""

    HEADER = lib.DS_DATA_VERIFY_HEADER
    OFFSETS = lib.DS_DATA_VERIFY_OFFSETS
    FULL = lib.DS_DATA_VERIFY_FULL


class Schedule(IntEnum):
    """Curriculum schedules (enum ds_data_schedule)."""

    FIXED_LINEAR = lib.DS_DATA_SCHEDULE_FIXED_LINEAR
    FIXED_ROOT = lib.DS_DATA_SCHEDULE_FIXED_ROOT
    FIXED_DISCRETE = lib.DS_DATA_SCHEDULE_FIXED_DISCRETE
    CUSTOM = lib.DS_DATA_SCHEDULE_CUSTOM


class Floor(IntEnum):
    """How fixed_linear / fixed_root treat a difficulty rounded below the minimum (enum ds_data_floor)."""

    NONE = lib.DS_DATA_FLOOR_NONE
    MIN = lib.DS_DATA_FLOOR_MIN
    STEP_MIN = lib.DS_DATA_FLOOR_STEP_MIN


class DifficultyType(IntEnum):
    """enum ds_data_difficulty_type."""

    VALUE = lib.DS_DATA_DIFFICULTY_VALUE
    PERCENTILE = lib.DS_DATA_DIFFICULTY_PERCENTILE


class LrScaling(IntEnum):
    """Dynamic batching's learning-rate scaling (enum ds_data_lr_scaling)."""

    LINEAR = lib.DS_DATA_LR_SCALING_LINEAR
    SQRT = lib.DS_DATA_LR_SCALING_SQRT
    NONE = lib.DS_DATA_LR_SCALING_NONE


class PickingOrder(IntEnum):
    """Dynamic batching's sequence order (enum ds_data_picking_order)."""

    DATALOADER = lib.DS_DATA_PICK_DATALOADER
    SEQLEN = lib.DS_DATA_PICK_SEQLEN
    RANDOM = lib.DS_DATA_PICK_RANDOM


class DataMode(IntEnum):
    """What a loader's sample is (enum ds_data_mode): a window of the token stream, or a document."""

    WINDOWS = lib.DS_DATA_MODE_WINDOWS
    DOCUMENTS = lib.DS_DATA_MODE_DOCUMENTS


class Field(IntEnum):
    """The tensors of a batch (enum ds_data_field)."""

    TOKENS = lib.DS_DATA_FIELD_TOKENS
    LENGTHS = lib.DS_DATA_FIELD_LENGTHS
    SAMPLE_IDS = lib.DS_DATA_FIELD_SAMPLE_IDS
    CU_SEQLENS = lib.DS_DATA_FIELD_CU_SEQLENS
    POSITION_IDS = lib.DS_DATA_FIELD_POSITION_IDS
    SEQUENCE_IDS = lib.DS_DATA_FIELD_SEQUENCE_IDS


# ---- arrays in and out ----------------------------------------------------------------------------


def _array(handle):
    """A NumPy array sharing the memory of a new library-owned CPU tensor (zero-copy)."""
    return Tensor(handle).numpy()


def _vector(values, np_dtype: str, dtype: DType) -> Tensor:
    """values as a contiguous CPU tensor of dtype, borrowing the array's memory when it already
    is one (numpy.asarray semantics: lists, NumPy arrays, PyTorch CPU tensors...)."""
    import numpy as np

    if isinstance(values, Tensor):
        return values
    array = np.ascontiguousarray(values, dtype=np_dtype)
    return Tensor.wrap(array.ctypes.data, array.shape, dtype, keepalive=array)


def _path(p: PathLike) -> str:
    return os.fspath(p)


def _set_fields(opts, **fields) -> None:
    """Set the options fields that were given (None keeps the library's default)."""
    for name, value in fields.items():
        if value is not None:
            setattr(opts, name, int(value) if isinstance(value, (bool, IntEnum)) else value)


# ---- tokenizers -----------------------------------------------------------------------------------


class Tokenizer(Resource):
    """Byte-level or GPT-2 BPE tokenizer. Nothing is downloaded: GPT-2 needs the caller's
    vocab.json and merges.txt."""

    _kind = "Tokenizer"

    @classmethod
    def byte_level(cls) -> "Tokenizer":
        """One token per byte (ids 0..255), end-of-text 256."""
        return cls(lib.TokenizerHandle.create(TokenizerKind.BYTES, None, None))

    @classmethod
    def gpt2(cls, vocab_path: PathLike, merges_path: PathLike) -> "Tokenizer":
        """GPT-2's byte-level BPE from vocab.json (token -> id) and merges.txt."""
        return cls(lib.TokenizerHandle.create(TokenizerKind.GPT2, _path(vocab_path), _path(merges_path)))

    @property
    def vocab_size(self) -> int:
        return self._live().vocab_size()

    @property
    def eot(self) -> int:
        """The end-of-text id (NotFoundError when a GPT-2 vocabulary has no <|endoftext|>)."""
        return self._live().eot()

    def encode(self, text: Union[str, bytes, bytearray, memoryview]):
        """The ids of text (str as UTF-8, or any bytes), as an int32 NumPy array."""
        return _array(self._live().encode(text))

    def decode(self, ids) -> bytes:
        """The bytes of ids; decode(encode(x)) == x for any bytes x. Not necessarily valid UTF-8:
        use ``.decode("utf-8", "replace")`` for text."""
        return _array(self._live().decode(_vector(ids, "int32", DType.I32)._live())).tobytes()


# ---- writing and building datasets ------------------------------------------------------------------


class DatasetWriter(Resource):
    """Writes a token dataset: documents of ids, streamed with bounded memory to a temporary file
    that :meth:`commit` renames into place. As a context manager it commits when the block ends
    normally and discards the file when it raises::

        with dsabi.DatasetWriter("train.dst", vocab_size=50257) as w:
            for ids in documents:
                w.add_document(ids)
    """

    _kind = "DatasetWriter"

    def __init__(self, path: PathLike, *, token_bytes: int = 2, vocab_size: int = 0, buffer_bytes: int = 0):
        """token_bytes: 2 (u16 ids) or 4 (u32). vocab_size > 0: ids at or above it are rejected.
        buffer_bytes: the write buffer (0: 8 MiB)."""
        super().__init__(lib.WriterHandle.create(_path(path), token_bytes, vocab_size, buffer_bytes))
        self._committed = False

    def append(self, ids) -> None:
        """Append ids to the current document."""
        self._live().append(_vector(ids, "int32", DType.I32)._live())

    def end_document(self) -> None:
        """End the current document (an empty one is recorded with length 0)."""
        self._live().end_document()

    def add_document(self, ids) -> None:
        """append(ids), then end_document()."""
        self.append(ids)
        self.end_document()

    def commit(self) -> None:
        """Finish the file (ending an open document) and move it into place."""
        self._live().commit()
        self._committed = True

    def __exit__(self, exc_type, *exc_info) -> None:
        try:
            if exc_type is None and not self._committed and not self.closed:
                self.commit()
        finally:
            self.close()  # uncommitted: the temporary file is removed


@dataclass(frozen=True)
class BuildProgress:
    """What build_dataset reports to its progress callback, about every chunk."""

    bytes_done: int
    bytes_total: int
    documents: int
    tokens: int


@dataclass(frozen=True)
class BuildStats:
    """The result of build_dataset."""

    files: int
    documents: int
    tokens: int
    bytes_in: int
    bytes_out: int
    seconds: float


def build_dataset(
    out_path: PathLike,
    inputs: Sequence[PathLike],
    *,
    tokenizer: Optional[Tokenizer] = None,
    split: Union[Split, str] = Split.FILE,
    append_eot: bool = False,
    delimiter: Optional[str] = None,
    token_bytes: int = 0,
    keep_empty: bool = False,
    chunk_bytes: int = 0,
    progress: Optional[Callable[[BuildProgress], Optional[bool]]] = None,
) -> BuildStats:
    """Tokenize text files into a dataset at out_path, streaming (memory bounded by chunk_bytes).

    tokenizer: None is byte-level. split: FILE, LINE, PARAGRAPH or DELIMITER (with delimiter).
    token_bytes: 0 picks 2 when the vocabulary fits in u16. progress(BuildProgress) runs on this
    thread: returning False stops the build (AbortedError); an exception it raises (Ctrl-C too)
    stops the build and propagates. Either way nothing is left at out_path.
    """
    opts = lib.BuildOptions()
    _set_fields(
        opts,
        split=enum_of(Split, split),
        append_eot=append_eot,
        token_bytes=token_bytes,
        keep_empty=keep_empty,
        chunk_bytes=chunk_bytes,
    )
    tok = tokenizer._live() if tokenizer is not None else None
    callback = None
    if progress is not None:

        def callback(done: int, total: int, documents: int, tokens: int) -> bool:
            return progress(BuildProgress(done, total, documents, tokens)) is not False

    raw = lib.data_build_py(_path(out_path), [_path(p) for p in inputs], opts, tok, delimiter, callback)
    return BuildStats(raw.n_files, raw.n_documents, raw.n_tokens, raw.bytes_in, raw.bytes_out, raw.seconds)


def write_metric(path: PathLike, values) -> None:
    """A per-sample metric file (one int64 per sample; sample i of a loader is window or
    document i), for curriculum metric buckets."""
    lib.data_metric_write(_path(path), _vector(values, "int64", DType.I64)._live())


def scale_lr(method: Union[LrScaling, str], base_batch_size: int, batch_size: int, base_lr: float) -> float:
    """DeepSpeed's scale_lr: the learning rate for a dynamic batch of batch_size sequences."""
    return lib.data_scale_lr(enum_of(LrScaling, method), base_batch_size, batch_size, base_lr)


# ---- reading datasets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """The header facts of a token dataset."""

    format_version: int
    token_bytes: int
    n_documents: int
    n_tokens: int
    file_bytes: int
    vocab_size: int  # 0: unknown
    tokens_crc32c: int


class TokenDataset(Resource):
    """An open token dataset (memory-mapped, read only, thread-safe). A sequence of documents:
    ``len(data)`` documents, ``data[i]`` the ids of document i as an int32 array."""

    _kind = "TokenDataset"

    @classmethod
    def open(cls, path: PathLike, *, verify: Union[Verify, str] = Verify.OFFSETS, max_resident_bytes: int = 0):
        """Open and validate (CorruptDataError names the file and byte offset of a problem).
        max_resident_bytes bounds the mapped pages kept resident (0: 256 MiB)."""
        return cls(lib.DataHandle.open(_path(path), enum_of(Verify, verify), max_resident_bytes))

    @property
    def info(self) -> DatasetInfo:
        raw = lib.DataInfo(self._live())
        return DatasetInfo(
            raw.format_version,
            raw.token_bytes,
            raw.n_documents,
            raw.n_tokens,
            raw.file_bytes,
            raw.vocab_size,
            raw.tokens_crc32c,
        )

    @property
    def n_tokens(self) -> int:
        return self.info.n_tokens

    def __len__(self) -> int:
        return self.info.n_documents

    def document(self, index: int):
        """The ids of document index (negative indexes count from the end)."""
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError("document index out of range")
        return _array(self._live().document(index))

    def __getitem__(self, index: int):
        try:
            return self.document(index)
        except ValueError as e:  # InvalidArgumentError: index out of range
            raise IndexError(str(e)) from e

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self.document(i)

    def read_tokens(self, first: int, n: int):
        """n ids from position first of the concatenated token stream."""
        return _array(self._live().read_tokens(first, n))

    def __repr__(self) -> str:
        if self.closed:
            return "<dsabi.TokenDataset (closed)>"
        info = self.info
        return f"<dsabi.TokenDataset documents={info.n_documents} tokens={info.n_tokens}>"


# ---- distributed sampler ----------------------------------------------------------------------------


class DistributedSampler(Resource):
    """PyTorch's DistributedSampler, in exactly its order: rank's share of a permutation seeded
    seed + epoch. Iterating yields the current epoch's indices from the cursor on."""

    _kind = "DistributedSampler"

    def __init__(
        self,
        n_samples: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        super().__init__(lib.SamplerHandle.create(n_samples, rank, world_size, seed, shuffle, drop_last))

    def __len__(self) -> int:
        """Samples this rank gets per epoch."""
        return self._live().length()

    def indices(self, epoch: int):
        """This rank's whole share of an epoch, in order, as an int64 array (the cursor stays)."""
        return _array(self._live().indices(epoch))

    def set_epoch(self, epoch: int) -> None:
        """Start epoch at position 0."""
        self._live().set_epoch(epoch)

    def take(self, max_n: int):
        """Up to max_n next indices of the current epoch (empty once it is exhausted)."""
        return _array(self._live().next(max_n))

    def __iter__(self) -> Iterator[int]:
        while True:
            chunk = self.take(1024)
            if len(chunk) == 0:
                return
            yield from chunk.tolist()

    @property
    def cursor(self) -> Tuple[int, int]:
        """(epoch, position): the epoch and how many of this rank's indices were handed out."""
        h = self._live()
        return h.epoch(), h.position()

    def set_cursor(self, epoch: int, position: int) -> None:
        """Continue exactly where a saved cursor was taken."""
        self._live().set_cursor(epoch, position)


# ---- curriculum learning ------------------------------------------------------------------------------


class Curriculum(Resource):
    """A curriculum schedule (DeepSpeed's CurriculumScheduler), from a config and/or fields.

        c = dsabi.Curriculum(schedule="fixed_linear", min_difficulty=8, max_difficulty=1024,
                             total_curriculum_step=100, difficulty_step=8)
        c = dsabi.Curriculum(cfg)                          # the config's curriculum block
        c = dsabi.Curriculum(custom=lambda step: 64 + step, min_difficulty=64, max_difficulty=512)

    ``custom(step) -> int`` makes a custom schedule. It may run on a loader's worker threads (it
    takes the GIL there); its exceptions propagate from difficulty() and update(), and elsewhere
    are reported through sys.unraisablehook, counting as difficulty 0.
    """

    _kind = "Curriculum"

    def __init__(
        self,
        config: Optional[Config] = None,
        *,
        metric: Optional[str] = None,
        schedule: Union[Schedule, str, None] = None,
        min_difficulty: Optional[int] = None,
        max_difficulty: Optional[int] = None,
        total_curriculum_step: Optional[int] = None,
        difficulty_step: Optional[int] = None,
        root_degree: Optional[float] = None,
        discrete_difficulty: Optional[Sequence[int]] = None,
        discrete_max_step: Optional[Sequence[int]] = None,
        difficulty_type: Union[DifficultyType, str, None] = None,
        floor: Union[Floor, str] = Floor.NONE,
        metric_path: Optional[PathLike] = None,
        custom: Optional[Callable[[int], int]] = None,
    ):
        opts = lib.CurriculumOptions()
        if custom is not None and schedule is None:
            schedule = Schedule.CUSTOM
        _set_fields(
            opts,
            schedule_type=None if schedule is None else enum_of(Schedule, schedule),
            floor_mode=enum_of(Floor, floor),
            min_difficulty=min_difficulty,
            max_difficulty=max_difficulty,
            total_curriculum_step=total_curriculum_step,
            difficulty_step=difficulty_step,
            difficulty_type=None if difficulty_type is None else enum_of(DifficultyType, difficulty_type),
        )
        if root_degree is not None:
            opts.root_degree = float(root_degree)
        # The library calls `custom` through a borrowed reference: this object keeps it, and loaders
        # keep this object, for as long as the C curriculum may call it.
        self._custom = custom
        lib.curriculum_options_set_custom(opts, custom)
        handle = lib.CurriculumHandle.create(
            opts,
            config._live() if config is not None else None,
            metric,
            None if metric_path is None else _path(metric_path),
            discrete_difficulty,
            discrete_max_step,
        )
        super().__init__(handle)

    def difficulty(self, step: int) -> int:
        """The schedule's difficulty at an optimizer step (stateless)."""
        return self._live().difficulty(step)

    def update(self, step: int) -> int:
        """DeepSpeed's update_difficulty(step): moves the current difficulty while it is below the
        maximum, and returns it."""
        return self._live().update(step)

    @property
    def current(self) -> int:
        return self._live().current()


# ---- loader -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a loader is; checkpoints save it and DataLoader.set_cursor resumes exactly there."""

    epoch: int = 0
    position: int = 0  # micro-batches this rank consumed in the epoch
    global_step: int = 0  # optimizer steps consumed
    consumed_samples: int = 0  # samples this rank consumed since the first epoch


@dataclass(frozen=True)
class BatchInfo:
    """What a micro-batch is: where it belongs and what it holds."""

    epoch: int
    index: int  # micro-batch index in the epoch (this rank)
    global_step: int  # the optimizer step it belongs to
    n_rows: int  # B
    n_columns: int  # T
    n_samples: int  # sequences (more than n_rows when packed)
    n_tokens: int  # real tokens, without padding
    difficulty: int  # curriculum difficulty used, or 0
    lr_scale: float  # dynamic batching: multiply the learning rate by this; else 1
    global_batch_samples: int  # dynamic batching: sequences in the global batch; else 0
    pinned: bool  # tensors are in pinned host memory


class Batch(Resource):
    """One micro-batch. Its fields are Tensors sharing the batch's memory (zero-copy into NumPy
    with ``.numpy()`` or into any DLPack consumer); they stay valid after the batch, the loader
    and the dataset are closed."""

    _kind = "Batch"

    def __init__(self, handle):
        super().__init__(handle)
        self._info: Optional[BatchInfo] = None

    @property
    def info(self) -> BatchInfo:
        if self._info is None:
            raw = lib.DataBatchInfo(self._live())
            self._info = BatchInfo(
                raw.epoch,
                raw.index,
                raw.global_step,
                raw.n_rows,
                raw.n_columns,
                raw.n_samples,
                raw.n_tokens,
                raw.difficulty,
                raw.lr_scale,
                raw.global_batch_samples,
                bool(raw.pinned),
            )
        return self._info

    def tensor(self, field: Union[Field, str]) -> Tensor:
        """One field as a Tensor (NotFoundError if this kind of batch has no such field)."""
        return Tensor(self._live().tensor(enum_of(Field, field)))

    def _optional(self, field: Field) -> Optional[Tensor]:
        try:
            return self.tensor(field)
        except NotFoundError:
            return None

    @property
    def tokens(self) -> Tensor:
        """[B, T] ids (int32 or int64); padding is the loader's pad_id."""
        return self.tensor(Field.TOKENS)

    @property
    def lengths(self) -> Tensor:
        """[B] int32: real tokens per row."""
        return self.tensor(Field.LENGTHS)

    @property
    def sample_ids(self) -> Tensor:
        """[n] int64: the dataset samples of the batch, in row order."""
        return self.tensor(Field.SAMPLE_IDS)

    @property
    def cu_seqlens(self) -> Optional[Tensor]:
        """Packed batches only: [segments + 1] int32 segment starts in the flattened tokens."""
        return self._optional(Field.CU_SEQLENS)

    @property
    def position_ids(self) -> Optional[Tensor]:
        """Packed batches only: [B, T] int32 positions restarting at each sequence."""
        return self._optional(Field.POSITION_IDS)

    @property
    def sequence_ids(self) -> Optional[Tensor]:
        """Packed batches only: [B, T] int32 sequence index in its row, -1 on padding."""
        return self._optional(Field.SEQUENCE_IDS)

    def __repr__(self) -> str:
        if self.closed:
            return "<dsabi.Batch (closed)>"
        i = self.info
        return f"<dsabi.Batch epoch={i.epoch} index={i.index} step={i.global_step} [{i.n_rows} x {i.n_columns}]>"


class DataLoader(Resource):
    """Micro-batches of a TokenDataset for one rank, prepared ahead by worker threads.

    Iterating gives one epoch (``for batch in loader``), and the next iteration the next epoch;
    an iteration left early continues where it stopped. Options left as None take the config
    (``train_micro_batch_size_per_gpu``, ``gradient_accumulation_steps``, ``dataloader_drop_last``,
    ``data_efficiency``...) or the library's default. Datasets, configs and curricula may be closed
    while the loader runs: it keeps what it needs.
    """

    _kind = "DataLoader"

    def __init__(
        self,
        dataset: TokenDataset,
        *,
        config: Optional[Config] = None,
        mode: Union[DataMode, str] = DataMode.WINDOWS,
        seq_len: int = 0,
        window_stride: int = 0,
        micro_batch_size: Optional[int] = None,
        gradient_accumulation_steps: Optional[int] = None,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        drop_last: Optional[bool] = None,
        seed: Optional[int] = None,
        num_workers: Optional[int] = None,
        prefetch_depth: Optional[int] = None,
        pin_memory: Optional[bool] = None,
        dtype: Union[DType, str] = DType.I32,
        pad_id: int = 0,
        dynamic_batching: Optional[bool] = None,
        max_tokens: Optional[int] = None,
        lr_scaling_method: Union[LrScaling, str, None] = None,
        min_batch_size: Optional[int] = None,
        max_batch_size: Optional[int] = None,
        picking_order: Union[PickingOrder, str, None] = None,
        curriculum: Optional[Curriculum] = None,
        start_step: int = 0,
    ):
        """seq_len: windows: ids per sample (required; T + 1 with window_stride T gives
        input/target pairs); documents: the cut length (0: none). pin_memory None: pinned when a
        CUDA device is present. dtype: int32 or int64 token ids."""
        opts = lib.LoaderOptions()
        _set_fields(
            opts,
            mode=enum_of(DataMode, mode),
            seq_len=seq_len,
            window_stride=window_stride,
            micro_batch_size=micro_batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            rank=rank,
            world_size=world_size,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            num_workers=num_workers,
            prefetch_depth=prefetch_depth,
            pin_memory=-1 if pin_memory is None else pin_memory,
            dtype=DType.of(dtype),
            pad_id=pad_id,
            dynamic_batching=dynamic_batching,
            max_tokens=max_tokens,
            lr_scaling_method=None if lr_scaling_method is None else enum_of(LrScaling, lr_scaling_method),
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            picking_order=None if picking_order is None else enum_of(PickingOrder, picking_order),
            start_step=start_step,
        )
        handle = lib.LoaderHandle.create(
            dataset._live(),
            opts,
            config._live() if config is not None else None,
            curriculum._live() if curriculum is not None else None,
        )
        # A custom schedule is called through a reference the curriculum holds: keep it.
        self._curriculum = curriculum
        super().__init__(handle)

    def __del__(self):
        # Stop and join the workers before the curriculum (and a custom schedule they may be
        # calling) can go away with this object's attributes.
        if self._handle is not None:
            self.close()

    def next_batch(self) -> Optional[Batch]:
        """The next micro-batch, or None once at the end of each epoch."""
        handle = self._live().next()
        return None if handle is None else Batch(handle)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self.next_batch()
            if batch is None:
                return
            yield batch

    def __len__(self) -> int:
        """Micro-batches this rank gets per epoch (the current epoch's, with dynamic batching)."""
        return self._live().length()

    @property
    def cursor(self) -> Cursor:
        raw = self._live().cursor()
        return Cursor(raw.epoch, raw.position, raw.global_step, raw.consumed_samples)

    def set_cursor(self, cursor: Cursor) -> None:
        """Continue exactly where cursor was taken (batches prepared ahead are dropped)."""
        raw = lib.DataCursor()
        raw.epoch, raw.position = cursor.epoch, cursor.position
        raw.global_step, raw.consumed_samples = cursor.global_step, cursor.consumed_samples
        self._live().set_cursor(raw)

    @property
    def info(self) -> dict:
        """The resolved settings: mode, batch sizes, workers, pinned memory, sampler, curriculum,
        dynamic batching."""
        return json.loads(self._live().info_json())

    def __repr__(self) -> str:
        if self.closed:
            return "<dsabi.DataLoader (closed)>"
        return f"<dsabi.DataLoader batches_per_epoch={len(self)} cursor={self.cursor}>"
