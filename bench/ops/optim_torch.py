#!/usr/bin/env python3
"""torch.optim.AdamW timed the way bench/ops/optim_bench.c times ds_op_optim_step, for
bench/ops/optim_cpu.sh and bench/ops/gpu_optim.sh. Also measures a device copy bandwidth (GPU).

    optim_torch.py [--device cpu|cuda] [--n 1e8] [--tensors 1] [--threads 1,2] [--iters 5]
                   [--impl foreach|fused|forloop] [--dtype f32|bf16] [--copy-bw 0|1] [--json out.json]

CPU: one warm-up step (creates the state), then `iters` synchronous steps; best and median.
CUDA: one warm-up step, then 3 batches of `iters` steps with one torch.cuda.synchronize() per batch;
the best and the median per-step time of the batches (as optim_bench does).
Hyper-parameters: torch defaults of AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight_decay 0.01).
"""
import argparse
import json
import statistics
import sys
import time

import torch


def bench_step(opt, device, iters):
    opt.step()  # warm-up: creates exp_avg / exp_avg_sq
    if device == "cuda":
        torch.cuda.synchronize()
        per = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(iters):
                opt.step()
            torch.cuda.synchronize()
            per.append((time.perf_counter() - t0) / iters)
        return min(per), statistics.median(per)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def copy_bandwidth(device, n, iters):
    """dst.copy_(src) on n f32 elements: GB/s counting read + write (8 bytes per element)."""
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    if device == "cuda":
        torch.cuda.synchronize()
        best = 1e30
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(iters):
                dst.copy_(src)
            torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - t0) / iters)
    else:
        best = 1e30
        for _ in range(iters):
            t0 = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - t0)
    del src, dst
    return 8.0 * n / best * 1e-9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=float, default=1e8)
    ap.add_argument("--tensors", type=int, default=1)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--impl", default="foreach", choices=["foreach", "fused", "forloop"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--copy-bw", type=int, default=0)
    ap.add_argument("--label", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    n, nt = int(a.n), a.tensors
    dt = torch.float32 if a.dtype == "f32" else torch.bfloat16
    threads = [int(t) for t in a.threads.split(",")] if a.device == "cpu" else [0]
    rows = []
    print(f"{'impl':<8} {'device':<6} {'threads':>8} {'best_s':>12} {'median_s':>12}", flush=True)
    for t in threads:
        if a.device == "cpu":
            torch.set_num_threads(t)
        lens = [n // nt + (1 if i < n % nt else 0) for i in range(nt)]
        params = []
        for ln in lens:
            p = torch.nn.Parameter(torch.full((ln,), 0.5, dtype=dt, device=a.device))
            p.grad = torch.full((ln,), 0.01, dtype=dt, device=a.device)
            params.append(p)
        kw = {}
        if a.impl == "foreach":
            kw["foreach"] = True
        elif a.impl == "fused":
            kw["fused"] = True
        else:
            kw["foreach"] = False
        try:
            opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, **kw)
            best, med = bench_step(opt, a.device, a.iters)
        except (RuntimeError, TypeError, ValueError) as e:  # e.g. fused= unknown to this torch
            print(f"{a.impl}: unsupported here: {e}", flush=True)
            rows.append({"threads": t, "unsupported": str(e)})
            del params
            continue
        print(f"{a.impl:<8} {a.device:<6} {t:>8} {best:>12.5f} {med:>12.5f}", flush=True)
        rows.append({"threads": t, "best_s": best, "median_s": med})
        del opt, params
    doc = {"what": "torch.optim.AdamW", "label": a.label, "impl": a.impl, "device": a.device, "n": n, "tensors": nt,
           "dtype": a.dtype, "torch": torch.__version__, "iters": a.iters, "rows": rows}
    if a.copy_bw:
        doc["copy_GBps"] = copy_bandwidth(a.device, min(n, 1 << 30), max(a.iters, 5))
        print(f"copy bandwidth ({a.device}): {doc['copy_GBps']:.1f} GB/s (read + write)", flush=True)
    if a.device == "cuda":
        doc["gpu"] = torch.cuda.get_device_name(0)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
