"""Calls release the GIL: another Python thread keeps running while one thread is inside a long
library call."""

import sys
import threading
import time

import dsabi


def test_other_thread_runs_during_a_long_fill():
    # A strided fill goes element by element: 16M elements take a good fraction of a second. Had
    # the call kept the GIL, the main thread could not run a single bytecode inside it.
    base = dsabi.Tensor.create((32 * 1024 * 1024,), dtype="f32")
    every_other = dsabi.Tensor.wrap(base.data_ptr, (16 * 1024 * 1024,), "f32", strides=(2,), keepalive=base)
    in_call = threading.Event()
    spans = []

    def worker():
        for _ in range(3):
            in_call.set()
            start = time.perf_counter()
            every_other.fill(1.0)
            spans.append((start, time.perf_counter()))
            in_call.clear()

    # The main thread naps 0.5 ms at a time and notes each wake-up. Napping needs next to no CPU,
    # so this holds on a busy machine too; but every wake-up needs the GIL to go on.
    stamps = []
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # keeps the edges of a GIL-holding call short
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            time.sleep(0.0005)
            if in_call.is_set():
                stamps.append(time.perf_counter())
        thread.join()
    finally:
        sys.setswitchinterval(previous_interval)

    call_time = sum(end - start for start, end in spans)
    covered = _covered_time(stamps, spans)
    # Without the GIL the main thread wakes all through the calls; with it, only at their edges
    # (a few milliseconds per call).
    assert call_time > 0.05, f"the fills were too fast to judge ({call_time:.3f} s)"
    assert covered > 0.5 * call_time, f"the main thread ran during {covered:.3f} s of {call_time:.3f} s in calls"
    assert base.numpy()[:4].tolist() == [1.0, 0.0, 1.0, 0.0]


def _covered_time(stamps, spans):
    """Time inside the spans during which the main thread kept waking up. Gaps between wake-ups
    count up to 50 ms (a loaded machine wakes sleepers late), but never a quarter of a call or more:
    a GIL-holding call leaves one gap as long as the call itself."""
    longest_gap = min(0.050, 0.25 * min(end - start for start, end in spans))
    covered = 0.0
    for start, end in spans:
        inside = [t for t in stamps if start <= t <= end]
        covered += sum(b - a for a, b in zip(inside, inside[1:]) if b - a < longest_gap)
    return covered
