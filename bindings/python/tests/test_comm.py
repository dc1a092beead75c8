"""Communication on the ranks of a job: every collective checked against a NumPy reduction of all
ranks' data, which each rank computes itself (rank r's data is a known function of r). Runs as a
job of one rank in the plain suite, and on 2 and 3 ranks under dsrun (ctest python_comm_*)."""

import gc
import os
import time
import weakref

import numpy as np
import pytest

import dsabi
from dsabi import ReduceOp


def rank_data(rank: int, n: int, dtype) -> np.ndarray:
    """Rank r's input: small integers (exact in every dtype), different on every rank, 1..4."""
    return ((np.arange(n) * (rank + 3) + 5 * rank) % 4 + 1).astype(dtype)


def everyone(world: int, n: int, dtype) -> np.ndarray:
    """[world, n]: what every rank holds."""
    return np.stack([rank_data(r, n, dtype) for r in range(world)])


def reference(op: ReduceOp, data: np.ndarray) -> np.ndarray:
    """The reduction over ranks as the library defines it (AVG truncates toward zero for integers,
    and rounds once from double for floats)."""
    if op == ReduceOp.SUM:
        return data.sum(axis=0, dtype=data.dtype)
    if op == ReduceOp.PROD:
        return data.prod(axis=0, dtype=data.dtype)
    if op == ReduceOp.MAX:
        return data.max(axis=0)
    if op == ReduceOp.MIN:
        return data.min(axis=0)
    total = data.astype(np.float64).sum(axis=0) / len(data)
    return (np.trunc(total) if data.dtype.kind == "i" else total).astype(data.dtype)


def assert_equal(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    bad = np.flatnonzero(got.ravel() != want.ravel())
    assert bad.size == 0, f"{what}: index {bad[0]}: got {got.ravel()[bad[0]]}, want {want.ravel()[bad[0]]}"


def test_rank_and_size_come_from_the_environment(comm):
    assert comm.rank == int(os.environ.get("RANK", "0"))
    assert comm.world_size == int(os.environ.get("WORLD_SIZE", "1"))
    assert comm.local_rank == int(os.environ.get("LOCAL_RANK", "0"))
    info = comm.info
    assert info["rank"] == comm.rank and info["world_size"] == comm.world_size
    assert info["source"] == ("torchrun_env" if "RANK" in os.environ else "default")


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.float64, np.int32])
@pytest.mark.parametrize("op", list(ReduceOp))
def test_all_reduce_every_op_and_dtype(comm, op, dtype):
    for n in (3, 5000):  # inside the agreement slot, and above it
        x = rank_data(comm.rank, n, dtype)
        assert comm.all_reduce(x, op) is x  # in place
        assert_equal(x, reference(op, everyone(comm.world_size, n, dtype)), f"{op.name} {np.dtype(dtype)} n={n}")


def test_ops_by_name(comm):
    x = rank_data(comm.rank, 10, np.float32)
    comm.all_reduce(x, "max")
    assert_equal(x, everyone(comm.world_size, 10, np.float32).max(axis=0), "max")


def test_async_all_reduce_keeps_the_array_alive(comm):
    x = rank_data(comm.rank, 100000, np.float32)
    want = reference(ReduceOp.SUM, everyone(comm.world_size, 100000, np.float32))
    ref = weakref.ref(x)
    work = comm.all_reduce(x, async_op=True)
    del x
    gc.collect()
    assert ref() is not None  # the Work holds the array until the work is complete
    assert work.wait() and work.test()
    assert_equal(work.result, want, "async sum")
    del work
    comm.barrier()
    gc.collect()
    assert ref() is None


def test_dropped_work_still_completes_safely(comm):
    x = rank_data(comm.rank, 50000, np.int64)
    ref = weakref.ref(x)
    comm.all_reduce(x, "sum", async_op=True)  # the Work is dropped at once
    del x
    gc.collect()
    # Either still running (then the communicator holds it) or done: the memory was never freed
    # under the library. A synchronous call orders after it; then the array may go.
    comm.barrier()
    comm.barrier(async_op=True).wait()
    gc.collect()
    assert ref() is None


def test_broadcast_and_reduce_to_the_last_rank(comm):
    root = comm.world_size - 1
    x = rank_data(comm.rank, 1000, np.float64)
    comm.broadcast(x, root=root)
    assert_equal(x, rank_data(root, 1000, np.float64), "broadcast")
    y = rank_data(comm.rank, 1000, np.int32)
    comm.reduce(y, root=root, op="sum")
    if comm.rank == root:
        assert_equal(y, everyone(comm.world_size, 1000, np.int32).sum(axis=0, dtype=np.int32), "reduce")


def test_gathers_scatter_and_all_to_all(comm):
    w, r = comm.world_size, comm.rank
    x = rank_data(r, 7, np.float32)
    full = np.empty((w, 7), dtype=np.float32)
    comm.all_gather(x, full)
    assert_equal(full, everyone(w, 7, np.float32), "all_gather")

    parts = [np.zeros(7, dtype=np.float32) for _ in range(w)]
    assert comm.all_gather_list(x, parts) is parts
    assert_equal(np.stack(parts), everyone(w, 7, np.float32), "all_gather_list")

    big = rank_data(r, 6 * w, np.int64)
    mine = np.empty(6, dtype=np.int64)
    comm.reduce_scatter(big, mine, op="sum")
    assert_equal(mine, everyone(w, 6 * w, np.int64).sum(axis=0)[6 * r : 6 * r + 6], "reduce_scatter")

    out = np.empty(6 * w, dtype=np.int64)
    comm.all_to_all(big, out)
    want = np.concatenate([rank_data(q, 6 * w, np.int64)[6 * r : 6 * r + 6] for q in range(w)])
    assert_equal(out, want, "all_to_all")


def test_async_collectives_overlap_and_complete_in_order(comm):
    w = comm.world_size
    xs = [rank_data(comm.rank, 20000 + k, np.float32) for k in range(4)]
    full = np.empty((w, 20000), dtype=np.float32)
    works = [comm.all_reduce(x, "sum", async_op=True) for x in xs]
    works.append(comm.all_gather(rank_data(comm.rank, 20000, np.float32), full, async_op=True))
    for work in reversed(works):
        assert work.wait(timeout=30)
    for k, x in enumerate(xs):
        assert_equal(x, everyone(w, 20000 + k, np.float32).sum(axis=0), f"async all_reduce {k}")
    assert_equal(full, everyone(w, 20000, np.float32), "async all_gather")


def test_torch_cpu_tensors_are_used_in_place(comm):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: DLPack collectives untested")
    w = comm.world_size
    x = torch.from_numpy(rank_data(comm.rank, 64, np.float32))
    address = x.data_ptr()
    assert comm.all_reduce(x, "sum") is x
    assert x.data_ptr() == address
    assert_equal(x.numpy(), everyone(w, 64, np.float32).sum(axis=0), "torch all_reduce")
    out = torch.zeros(w * 64, dtype=torch.float32)
    work = comm.all_gather(torch.from_numpy(rank_data(comm.rank, 64, np.float32)), out, async_op=True)
    work.wait()
    assert_equal(out.numpy().reshape(w, 64), everyone(w, 64, np.float32), "torch all_gather")


def test_dsabi_tensors_work_too(comm):
    t = dsabi.Tensor.full((4, 4), comm.rank + 1.0, dtype="bf16")
    comm.all_reduce(t)
    s = comm.world_size * (comm.world_size + 1) / 2
    assert (t.clone().numpy() == dsabi.Tensor.full((4, 4), s, dtype="bf16").numpy()).all()


def test_send_and_receive_around_a_ring(comm):
    w, r = comm.world_size, comm.rank
    if w == 1:
        pytest.skip("point to point needs two ranks")
    got = np.zeros(300, dtype=np.int32)
    recv = comm.recv(got, src=(r - 1) % w, tag=3, async_op=True)
    send = comm.send(rank_data(r, 300, np.int32), dst=(r + 1) % w, tag=3, async_op=True)
    assert send.wait() and recv.wait()
    assert_equal(got, rank_data((r - 1) % w, 300, np.int32), "ring")


def test_wait_with_a_timeout(comm):
    if comm.world_size == 1:
        pytest.skip("needs a peer that is late")
    if comm.rank == 0:
        got = np.zeros(8, dtype=np.float32)
        work = comm.recv(got, src=1, tag=9, async_op=True)
        assert work.wait(timeout=0.05) is False  # rank 1 sends half a second later
        assert not work.test()
        assert work.wait(timeout=30)
        assert_equal(got, rank_data(1, 8, np.float32), "late message")
    elif comm.rank == 1:
        time.sleep(0.5)
        comm.send(rank_data(1, 8, np.float32), dst=0, tag=9)
    comm.barrier()


def test_split_into_groups(comm):
    w, r = comm.world_size, comm.rank
    # even and odd ranks, each group ordered by descending rank (key = -rank)
    group = comm.split(r % 2, key=-r)
    members = sorted((q for q in range(w) if q % 2 == r % 2), reverse=True)
    with group:
        assert group.world_size == len(members) and group.rank == members.index(r)
        assert group.info["global_ranks"] == members
        x = rank_data(r, 50, np.int64)
        group.all_reduce(x)
        assert_equal(x, np.stack([rank_data(q, 50, np.int64) for q in members]).sum(axis=0), "group sum")
    # rank 0 opts out: it gets no communicator, the others form one group
    rest = comm.split(None if r == 0 else 1)
    assert (rest is None) == (r == 0)
    if rest is not None:
        with rest:
            assert rest.world_size == w - 1 and rest.rank == r - 1


def test_mismatched_sizes_fail_on_every_rank_and_the_comm_survives(comm):
    if comm.world_size == 1:
        pytest.skip("needs ranks that disagree")
    with pytest.raises(dsabi.CommMismatchError) as info:
        comm.all_reduce(np.ones(10 + comm.rank, dtype=np.float32))
    assert info.value.code == dsabi.Status.COMM_MISMATCH
    assert "ranks disagree" in info.value.message
    x = np.ones(10, dtype=np.float32)
    comm.all_reduce(x)
    assert_equal(x, np.full(10, comm.world_size, dtype=np.float32), "after a mismatch")


def test_argument_errors_are_raised_before_communicating(comm):
    with pytest.raises(dsabi.InvalidArgumentError, match="out has 3 elements"):
        comm.all_gather(np.ones(2, dtype=np.float32), np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="DLPack producer"):
        comm.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match="unknown ReduceOp 'median'"):
        comm.all_reduce(np.ones(2), "median")


def test_comms_logger_counts_operations(comm):
    comm.log_reset()
    for _ in range(3):
        comm.all_reduce(np.ones(256, dtype=np.float32))
    summary = comm.log_summary(as_json=True)
    assert (summary["rank"], summary["world_size"]) == (comm.rank, comm.world_size)
    rows = [op for op in summary["ops"] if op["op"] == "all_reduce"]
    assert len(rows) == 1 and rows[0]["count"] == 3 and rows[0]["msg_size_bytes"] == 1024
    assert len(rows[0]["latencies_ms"]) == 3
    assert "all_reduce" in comm.log_summary()
