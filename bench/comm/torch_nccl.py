#!/usr/bin/env python3
"""torch.distributed with the NCCL backend, measured like nccl_bench (same ops, sizes, iteration
counts, dtype and formulas), for scripts/gpu-comm.sh. Run it under dsrun on a GPU machine:

    dsrun -n <GPUs> --master-port 0 python3 bench/comm/torch_nccl.py --json out.json

Columns: sync = one call then torch.cuda.synchronize() per iteration; async = back to back, one
synchronize at the end. Bus bandwidth with nccl-tests' formulas (GB/s = 1e9 bytes/s).
"""
import argparse
import json
import os
import time

_fd = os.environ.pop("DSABI_STORE_LISTEN_FD", None)  # dsrun's socket for dsabi's store: torch binds its own
if _fd:
    os.close(int(_fd))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="all_reduce,all_gather,reduce_scatter")
    ap.add_argument("--min-bytes", type=int, default=1024)
    ap.add_argument("--max-bytes", type=int, default=1 << 30)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--json")
    a = ap.parse_args()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    try:
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    except TypeError:  # torch before 2.3 has no device_id
        dist.init_process_group("nccl")
    rank, n = dist.get_rank(), dist.get_world_size()
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    es = torch.tensor([], dtype=dt).element_size()
    rows = []
    if rank == 0:
        print(f"# torch {torch.__version__}, NCCL {torch.cuda.nccl.version()}, {n} x {torch.cuda.get_device_name(local)}")
        print(f"{'op':<15} {'bytes':>12} {'iters':>6} {'sync_us':>11} {'async_us':>11} {'sync_bus':>10} {'async_bus':>10}", flush=True)
    for op in a.ops.split(","):
        size = a.min_bytes
        while size <= a.max_bytes:
            total = size // es
            total -= total % n
            big = torch.zeros(total, dtype=dt, device="cuda")
            small = torch.zeros(total // n, dtype=dt, device="cuda")
            iters = max(5, min(200, (8 << 30) // size))
            warm = iters // 10 + 2

            def call():
                if op == "all_reduce":
                    dist.all_reduce(big)
                elif op == "all_gather":
                    dist.all_gather_into_tensor(big, small)
                else:
                    dist.reduce_scatter_tensor(small, big)

            def timed(sync_each):
                for _ in range(warm):
                    call()
                torch.cuda.synchronize()
                dist.barrier()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(iters):
                    call()
                    if sync_each:
                        torch.cuda.synchronize()
                torch.cuda.synchronize()
                return (time.perf_counter() - t0) / iters

            ts, ta = timed(True), timed(False)
            sz = total * es
            f = 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n
            bus = lambda t: sz / t / 1e9 * f  # noqa: E731
            if rank == 0:
                print(f"{op:<15} {sz:>12} {iters:>6} {ts * 1e6:>11.2f} {ta * 1e6:>11.2f} {bus(ts):>10.2f} {bus(ta):>10.2f}", flush=True)
            rows.append({"op": op, "bytes": sz, "iters": iters, "sync_us": ts * 1e6, "async_us": ta * 1e6,
                         "sync_busbw_GBps": bus(ts), "async_busbw_GBps": bus(ta)})
            del big, small
            size *= 4
    if rank == 0 and a.json:
        with open(a.json, "w") as f:
            json.dump({"impl": "torch", "torch_version": torch.__version__, "world_size": n, "dtype": a.dtype, "rows": rows}, f,
                      indent=1)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
