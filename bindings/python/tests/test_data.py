"""The data pipeline: tokenizers, writing / building / reading token datasets, the distributed
sampler, curricula (custom schedules included) and the loader, on seeded random data."""

import gc
import os
import threading
import weakref

import numpy as np
import pytest

import dsabi
from dsabi import Status


@pytest.fixture
def rng():
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed}")  # shown when a test fails
    return np.random.default_rng(seed)


def write_dataset(path, documents, **options):
    with dsabi.DatasetWriter(path, **options) as w:
        for ids in documents:
            w.add_document(ids)


# ---- tokenizers ---------------------------------------------------------------------------------


def test_byte_tokenizer_round_trips_any_bytes(rng):
    tok = dsabi.Tokenizer.byte_level()
    assert (tok.vocab_size, tok.eot) == (257, 256)
    raw = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    ids = tok.encode(raw)
    assert ids.dtype == np.int32 and ids.tolist() == list(raw)
    back = tok.decode(ids)
    assert isinstance(back, bytes) and back == raw
    assert tok.encode("h\u00e9").tolist() == [104, 0xC3, 0xA9]  # str is encoded as UTF-8
    assert tok.decode([0, 104, 0]) == b"\x00h\x00"  # NULs survive: (buf, len), not C strings
    assert tok.encode(b"").tolist() == [] and tok.decode([]) == b""


def test_decode_rejects_ids_outside_the_vocabulary():
    tok = dsabi.Tokenizer.byte_level()
    with pytest.raises(dsabi.InvalidArgumentError) as info:
        tok.decode([65, 300])
    assert info.value.code == Status.INVALID_ARG and "ids[1]=300" in info.value.message


def _gpt2_byte_alphabet():
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to 256, 257, ..."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


@pytest.fixture
def gpt2(tmp_path):
    """A small GPT-2 vocabulary: byte b has id b, then merges up to "hello" and " world"."""
    import json

    alphabet = _gpt2_byte_alphabet()
    vocab = {alphabet[b]: b for b in range(256)}
    space = alphabet[ord(" ")]
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("o", "r"), (space, "w"),
              (space + "w", "or"), ("l", "d"), (space + "wor", "ld")]
    for k, (a, b) in enumerate(merges):
        vocab[a + b] = 256 + k
    vocab["<|endoftext|>"] = 265
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return dsabi.Tokenizer.gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")


def test_gpt2_tokenizer_merges_by_rank(gpt2):
    assert (gpt2.vocab_size, gpt2.eot) == (266, 265)
    assert gpt2.encode("hello world").tolist() == [259, 264]
    assert gpt2.encode("hello  world!").tolist() == [259, 32, 264, 33]
    assert gpt2.decode(gpt2.encode("hello  world!")) == b"hello  world!"


def test_gpt2_tokenizer_needs_its_files(tmp_path):
    with pytest.raises(dsabi.DsIOError):
        dsabi.Tokenizer.gpt2(tmp_path / "missing.json", tmp_path / "missing.txt")


# ---- writing and reading datasets ------------------------------------------------------------------


def test_writer_and_dataset_round_trip(tmp_path, rng):
    docs = [rng.integers(0, 50257, rng.integers(0, 300), dtype=np.int32) for _ in range(120)]
    path = tmp_path / "rt.dst"
    write_dataset(path, docs, vocab_size=50257)
    with dsabi.TokenDataset.open(path, verify="full") as data:
        info = data.info
        n_tokens = sum(len(d) for d in docs)
        assert (info.format_version, info.token_bytes, info.n_documents) == (1, 2, 120)
        assert (info.n_tokens, info.vocab_size) == (n_tokens, 50257)
        assert info.file_bytes == os.path.getsize(path)
        assert len(data) == 120
        for i in (0, 7, 119, -1):
            assert data[i].tolist() == docs[i].tolist(), f"document {i}"
        stream = np.concatenate(docs)
        assert data.read_tokens(100, 50).tolist() == stream[100:150].tolist()
        assert sum(1 for _ in data) == 120
        with pytest.raises(IndexError):
            data[120]


def test_writer_accepts_lists_and_wide_ids(tmp_path):
    path = tmp_path / "wide.dst"
    with dsabi.DatasetWriter(path, token_bytes=4) as w:
        w.append([1, 2])
        w.append(np.array([70000], dtype=np.int64))  # converted to int32
        w.end_document()
        w.add_document([])
    with dsabi.TokenDataset.open(path) as data:
        assert data.info.token_bytes == 4
        assert [d.tolist() for d in data] == [[1, 2, 70000], []]


def test_writer_discards_on_error_and_rejects_bad_ids(tmp_path):
    path = tmp_path / "bad.dst"
    with pytest.raises(dsabi.InvalidArgumentError, match=r"ids\[1\]=100 is outside \[0, 100\)"):
        with dsabi.DatasetWriter(path, vocab_size=100) as w:
            w.append([5, 100, 7])
    assert not path.exists() and os.listdir(tmp_path) == []  # nothing committed, no temporary left
    w = dsabi.DatasetWriter(path)
    w.commit()
    with pytest.raises(dsabi.StateError, match="already committed"):
        w.append([1])
    w.close()
    with pytest.raises(dsabi.InvalidHandleError):
        w.append([1])


def test_corrupt_dataset_names_the_byte_offset(tmp_path):
    path = tmp_path / "t.dst"
    write_dataset(path, [[1, 2, 3]] * 10)
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    with pytest.raises(dsabi.CorruptDataError) as info:
        dsabi.TokenDataset.open(path)
    assert info.value.code == Status.CORRUPT
    assert str(path) in info.value.message and "byte offset" in info.value.message


# ---- building datasets -----------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path):
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("first paragraph\nstill first\n\nsecond paragraph\n", encoding="utf-8")
    b.write_text("caf\u00e9 third\n\n\nfourth<|endoftext|>", encoding="utf-8")
    return [a, b]


def test_build_splits_tokenizes_and_reports_progress(tmp_path, corpus):
    reports = []
    out = tmp_path / "built.dst"
    stats = dsabi.build_dataset(out, corpus, split="paragraph", append_eot=True, chunk_bytes=7,
                                progress=reports.append)
    assert (stats.files, stats.documents) == (2, 4)
    assert stats.bytes_in == sum(os.path.getsize(p) for p in corpus)
    assert stats.bytes_out == os.path.getsize(out)
    assert len(reports) >= 5  # 7-byte chunks: many calls
    assert all(r.bytes_done <= r.bytes_total for r in reports)
    tok = dsabi.Tokenizer.byte_level()
    with dsabi.TokenDataset.open(out) as data:
        docs = list(data)
    assert stats.tokens == sum(len(d) for d in docs)
    assert all(d[-1] == tok.eot for d in docs)  # append_eot
    assert [tok.decode(d[:-1]) for d in docs] == [
        b"first paragraph\nstill first",
        b"second paragraph",
        "caf\u00e9 third".encode(),
        b"fourth<|endoftext|>",
    ]


def test_build_with_a_tokenizer_and_delimiter(tmp_path, corpus, gpt2):
    out = tmp_path / "gpt2.dst"
    stats = dsabi.build_dataset(out, [str(p) for p in corpus], tokenizer=gpt2, split=dsabi.Split.DELIMITER,
                                delimiter="<|endoftext|>")
    assert stats.documents == 2  # a file's end ends a document; the empty piece after b's delimiter is skipped
    with dsabi.TokenDataset.open(out) as data:
        texts = [gpt2.decode(d) for d in data]
    assert texts == [corpus[0].read_bytes(), "caf\u00e9 third\n\n\nfourth".encode()]


def test_progress_returning_false_cancels_and_leaves_nothing(tmp_path, corpus):
    out = tmp_path / "cancelled.dst"
    with pytest.raises(dsabi.AbortedError) as info:
        dsabi.build_dataset(out, corpus, chunk_bytes=7, progress=lambda p: p.bytes_done < 20)
    assert info.value.code == Status.ABORTED
    assert "progress callback" in info.value.message
    assert not out.exists()


def test_progress_exception_propagates_and_cancels(tmp_path, corpus):
    out = tmp_path / "raised.dst"

    class Stop(Exception):
        pass

    def progress(p):
        raise Stop(p.bytes_done)

    with pytest.raises(Stop):
        dsabi.build_dataset(out, corpus, chunk_bytes=7, progress=progress)
    assert not out.exists()
    # The thread is clean afterwards: the next build works and reports nothing stale.
    assert dsabi.build_dataset(out, corpus).documents == 2


def test_build_errors_name_the_file(tmp_path):
    with pytest.raises(dsabi.DsIOError) as info:
        dsabi.build_dataset(tmp_path / "x.dst", [tmp_path / "nope.txt"])
    assert "nope.txt" in info.value.message


def test_build_releases_the_gil(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"lorem ipsum dolor sit amet\n" * 400000)  # ~11 MB
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        dsabi.build_dataset(tmp_path / "big.dst", [big], split="line")
    finally:
        done.set()
        thread.join()
    assert len(ticks) > 3


# ---- sampler ----------------------------------------------------------------------------------------


def _reference_indices(n, rank, world, seed, epoch, shuffle, drop_last):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the sampler order is untested")
    from torch.utils.data import DistributedSampler

    s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
    s.set_epoch(epoch)
    del torch
    return list(s)


@pytest.mark.parametrize(
    "n, world, seed, shuffle, drop_last",
    [(10, 3, 0, True, False), (10, 3, 7, True, True), (1000, 4, 12345, True, False), (11, 2, 0, False, False)],
)
def test_sampler_is_torchs_distributed_sampler(n, world, seed, shuffle, drop_last):
    for rank in range(world):
        with dsabi.DistributedSampler(n, rank=rank, world_size=world, seed=seed, shuffle=shuffle,
                                      drop_last=drop_last) as s:
            for epoch in (0, 3):
                want = _reference_indices(n, rank, world, seed, epoch, shuffle, drop_last)
                assert s.indices(epoch).tolist() == want, f"rank {rank} epoch {epoch}"
            assert len(s) == len(want)


def test_sampler_cursor_resumes_exactly():
    s = dsabi.DistributedSampler(100, rank=1, world_size=3, seed=5)
    s.set_epoch(2)
    expected = s.indices(2).tolist()
    first = s.take(10).tolist()
    assert first == expected[:10] and s.cursor == (2, 10)
    resumed = dsabi.DistributedSampler(100, rank=1, world_size=3, seed=5)
    resumed.set_cursor(*s.cursor)
    assert list(resumed) == expected[10:]
    assert len(resumed.take(5)) == 0  # exhausted until the next set_epoch
    with pytest.raises(dsabi.InvalidArgumentError, match="position=99"):
        resumed.set_cursor(0, 99)


# ---- curriculum -------------------------------------------------------------------------------------


def test_fixed_linear_schedule_values():
    c = dsabi.Curriculum(schedule="fixed_linear", min_difficulty=8, max_difficulty=1024, total_curriculum_step=100,
                         difficulty_step=8)
    # d = floor(step / 100 * 1016 + 8), rounded down to a multiple of 8, at most 1024
    expected = {0: 8, 1: 16, 2: 24, 10: 104, 33: 336, 50: 512, 99: 1008, 100: 1024, 150: 1024}
    assert {s: c.difficulty(s) for s in expected} == expected
    assert c.current == 8
    assert c.update(50) == 512 and c.current == 512


def test_discrete_schedule_and_config_schedules():
    c = dsabi.Curriculum(schedule="fixed_discrete", min_difficulty=1, max_difficulty=3,
                         discrete_difficulty=[1, 2, 3], discrete_max_step=[5, 10])
    assert [c.difficulty(s) for s in (0, 5, 6, 10, 11, 10**6)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(dsabi.InvalidArgumentError, match="one more difficulty"):
        dsabi.Curriculum(schedule="fixed_discrete", discrete_difficulty=[1, 2], discrete_max_step=[5, 10])
    cfg = dsabi.Config.parse(
        {"train_batch_size": 8, "curriculum_learning": {
            "enabled": True, "curriculum_type": "seqlen", "min_difficulty": 8, "max_difficulty": 1024,
            "schedule_type": "fixed_root",
            "schedule_config": {"total_curriculum_step": 100, "difficulty_step": 8, "root_degree": 2}}},
        world_size=1)
    assert dsabi.Curriculum(cfg).difficulty(50) == 720  # sqrt(0.5) * 1016 + 8 = 726.4 -> 720
    assert dsabi.Curriculum(cfg, total_curriculum_step=200).difficulty(50) == 512  # a field overrides


def test_custom_schedule_and_its_exceptions():
    c = dsabi.Curriculum(custom=lambda step: step * step + 3, min_difficulty=0, max_difficulty=1000)
    assert c.difficulty(7) == 52

    def broken(step):
        raise ZeroDivisionError(f"step {step}")

    c = dsabi.Curriculum(custom=broken, min_difficulty=0, max_difficulty=10)
    with pytest.raises(ZeroDivisionError, match="step 4"):
        c.difficulty(4)
    with pytest.raises(ZeroDivisionError):
        c.update(2)
    with pytest.raises(dsabi.InvalidArgumentError, match="custom_fn"):
        dsabi.Curriculum(schedule="custom", min_difficulty=0, max_difficulty=10)


# ---- loader ----------------------------------------------------------------------------------------


@pytest.fixture
def windows(tmp_path, rng):
    """A dataset of 40 random documents (500..999 ids each) and its concatenated stream."""
    docs = [rng.integers(0, 50000, rng.integers(500, 1000), dtype=np.int32) for _ in range(40)]
    path = tmp_path / "windows.dst"
    write_dataset(path, docs)
    with dsabi.TokenDataset.open(path) as data:
        yield data, np.concatenate(docs)


def test_loader_windows_match_the_data_and_the_sampler(windows):
    data, stream = windows
    n_windows = (len(stream) - 65) // 64 + 1
    seen = []
    with dsabi.DataLoader(data, seq_len=65, window_stride=64, micro_batch_size=4, rank=1, world_size=2, seed=11,
                          num_workers=2) as loader:
        assert len(loader) == (len(dsabi.DistributedSampler(n_windows, rank=1, world_size=2)) + 3) // 4
        for batch in loader:
            tokens = batch.tokens.numpy()
            ids = batch.sample_ids.numpy()
            info = batch.info
            assert tokens.shape == (info.n_rows, info.n_columns) == (len(ids), 65)
            assert batch.lengths.numpy().tolist() == [65] * len(ids)
            for row, sample in zip(tokens, ids):
                assert row.tolist() == stream[sample * 64 : sample * 64 + 65].tolist()
            assert batch.cu_seqlens is None  # only packed batches have it
            seen.extend(ids.tolist())
        assert loader.next_batch() is not None  # a new epoch starts after the end
    expected = dsabi.DistributedSampler(n_windows, rank=1, world_size=2, seed=11).indices(0).tolist()
    assert seen == expected


def test_loader_batches_are_zero_copy_and_outlive_the_loader(windows):
    data, stream = windows
    loader = dsabi.DataLoader(data, seq_len=33, micro_batch_size=2, shuffle=False, dtype="i64")
    batch = loader.next_batch()
    tokens = batch.tokens
    view = tokens.numpy()
    assert view.dtype == np.int64 and view.__array_interface__["data"][0] == tokens.data_ptr
    assert np.from_dlpack(tokens).__array_interface__["data"][0] == tokens.data_ptr
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: DLPack into torch untested")
    assert torch.utils.dlpack.from_dlpack(batch.tokens).data_ptr() == tokens.data_ptr
    loader.close()
    batch.close()
    data.close()
    gc.collect()
    assert view[1].tolist() == stream[33:66].tolist()  # still valid: the view holds the memory


def test_loader_resumes_from_a_cursor(windows):
    data, _ = windows

    def make():
        return dsabi.DataLoader(data, seq_len=65, window_stride=64, micro_batch_size=4, gradient_accumulation_steps=3,
                                seed=3, num_workers=2)

    with make() as loader:
        first = [b.sample_ids.numpy().tolist() for b in loader]
        for _ in range(7):  # into the second epoch
            loader.next_batch()
        cursor = loader.cursor
        rest = [b.sample_ids.numpy().tolist() for b in loader]
    assert (cursor.epoch, cursor.position, cursor.global_step) == (1, 7, (len(first) + 7) // 3)
    with make() as resumed:
        resumed.set_cursor(cursor)
        assert [b.sample_ids.numpy().tolist() for b in resumed] == rest
    assert first[0] != rest[-1]


def test_loader_documents_with_a_custom_curriculum_on_worker_threads(tmp_path, rng):
    docs = [rng.integers(1, 50000, rng.integers(1, 300), dtype=np.int32) for _ in range(200)]
    path = tmp_path / "docs.dst"
    write_dataset(path, docs)
    callers = set()

    def schedule(step):
        callers.add(threading.get_ident())
        return min(8 * step, 64)

    curriculum = dsabi.Curriculum(custom=schedule, min_difficulty=8, max_difficulty=64)
    ref = weakref.ref(schedule)
    del schedule
    with dsabi.TokenDataset.open(path) as data:
        loader = dsabi.DataLoader(data, mode="documents", micro_batch_size=2, gradient_accumulation_steps=1,
                                  shuffle=False, pad_id=-1, num_workers=3, curriculum=curriculum)
    curriculum.close()  # the loader keeps the curriculum, and so the schedule
    gc.collect()
    assert ref() is not None
    for step, batch in enumerate(loader):
        info = batch.info
        assert info.global_step == step
        cut = min(8 * (step + 1), 64)  # the difficulty of step + 1 truncates every document
        assert info.difficulty == cut
        lengths = batch.lengths.numpy()
        tokens = batch.tokens.numpy()
        for r, sample in enumerate(batch.sample_ids.numpy()):
            want = docs[sample][:cut]
            assert lengths[r] == len(want)
            assert tokens[r, : len(want)].tolist() == want.tolist()
            assert (tokens[r, len(want):] == -1).all()  # pad_id
    # Loader workers called it, taking the GIL - which next() must release while it waits for them.
    assert callers and threading.get_ident() not in callers
    loader.close()
    del loader, curriculum  # now nothing can call the schedule: it is released
    gc.collect()
    assert ref() is None


def test_loader_dynamic_batching_packs_every_document_once(tmp_path, rng):
    lengths = rng.integers(1, 300, 600)
    path = tmp_path / "packed.dst"
    write_dataset(path, [np.arange(1, n + 1, dtype=np.int32) for n in lengths])
    cfg = dsabi.Config.parse({"train_batch_size": 2, "train_micro_batch_size_per_gpu": 1, "data_efficiency": {
        "enabled": True, "seed": 5, "data_sampling": {"enabled": True, "dynamic_batching": {
            "enabled": True, "max_tokens": 1024, "lr_scaling_method": "linear"}}}}, world_size=1)
    with dsabi.TokenDataset.open(path) as data, \
            dsabi.DataLoader(data, config=cfg, mode=dsabi.DataMode.DOCUMENTS) as loader:
        assert loader.info["dynamic_batching"]["max_tokens"] == 1024
        seen = []
        for batch in loader:
            assert batch.tokens.shape == (1, 1024)
            cu = batch.cu_seqlens.numpy()
            pos = batch.position_ids.numpy()[0]
            seq = batch.sequence_ids.numpy()[0]
            ids = batch.sample_ids.numpy()
            assert cu[0] == 0 and cu[-1] == 1024 and (np.diff(cu) > 0).all()
            for k, sample in enumerate(ids):  # sequence k is segment k: positions restart at 0
                begin, end = cu[k], cu[k + 1]
                assert end - begin == lengths[sample]
                assert pos[begin:end].tolist() == list(range(lengths[sample]))
                assert (seq[begin:end] == k).all()
            assert batch.lengths.numpy()[0] == sum(lengths[s] for s in ids) <= 1024
            assert batch.info.lr_scale > 0
            seen.extend(ids.tolist())
        dropped = loader.info["dynamic_batching"]["dropped_tail"]
    assert len(seen) == len(set(seen)) == 600 - dropped


def test_loader_option_errors_name_the_field(windows):
    data, _ = windows
    with pytest.raises(dsabi.InvalidArgumentError, match="seq_len=0"):
        dsabi.DataLoader(data)
    with pytest.raises(dsabi.InvalidArgumentError, match=r"rank=2 is outside \[0, world_size=2\)"):
        dsabi.DataLoader(data, seq_len=8, rank=2, world_size=2)
    with pytest.raises(ValueError, match="unknown DataMode 'pages'"):
        dsabi.DataLoader(data, seq_len=8, mode="pages")


def test_write_metric_and_scale_lr(tmp_path):
    path = tmp_path / "len.metric"
    dsabi.write_metric(path, [5, 1, 9])
    raw = path.read_bytes()
    assert raw[:8] == b"DSMETRIC" and len(raw) == 32 + 3 * 8
    assert np.frombuffer(raw[32:], dtype="<i8").tolist() == [5, 1, 9]
    assert dsabi.scale_lr("linear", 4, 8, 0.1) == pytest.approx(0.2)
    assert dsabi.scale_lr(dsabi.LrScaling.SQRT, 4, 16, 0.1) == pytest.approx(0.2)
    assert dsabi.scale_lr("none", 4, 16, 0.1) == 0.1
