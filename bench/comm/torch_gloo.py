#!/usr/bin/env python3
"""torch.distributed with the gloo backend, measured like comm_bench (same ops, sizes, iteration
counts, timing and formulas), for bench/comm/run_gloo.sh. Run it under dsrun:

    dsrun -n 2 --master-port 0 /usr/bin/python3 bench/comm/torch_gloo.py --json out.json

reduce_scatter is reported as unsupported when this torch's gloo process group lacks it (torch
1.13 has no gloo reduce_scatter).
"""
import argparse
import json
import os
import sys
import time

# dsrun hands rank 0 the listening socket of dsabi's rendezvous store; torch's TCPStore binds the
# port itself, so give it back first.
_fd = os.environ.pop("DSABI_STORE_LISTEN_FD", None)
if _fd:
    os.close(int(_fd))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64,
          "i32": torch.int32, "i64": torch.int64, "u8": torch.uint8}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="all_reduce,all_gather,reduce_scatter,broadcast")
    ap.add_argument("--min-bytes", type=int, default=1024)
    ap.add_argument("--max-bytes", type=int, default=256 << 20)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    dist.init_process_group("gloo")
    rank, n = dist.get_rank(), dist.get_world_size()
    dt = DTYPES[a.dtype]
    es = torch.tensor([], dtype=dt).element_size()
    rows = []
    if rank == 0:
        print(f"{'op':<16} {'bytes':>12} {'iters':>8} {'time_us':>12} {'algbw_GB/s':>12} {'busbw_GB/s':>12}", flush=True)
    for op in a.ops.split(","):
        size = a.min_bytes
        while size <= a.max_bytes:
            total = size // es
            total -= total % n
            if total <= 0:
                size *= 4
                continue
            big = torch.zeros(total, dtype=dt)
            small = torch.zeros(total // n, dtype=dt)
            parts = list(big.chunk(n))
            iters = a.iters if a.iters > 0 else max(3, min(200, (512 << 20) // size))
            warm = iters // 10 + 1

            def call():
                if op == "all_reduce":
                    dist.all_reduce(big)
                elif op == "all_gather":
                    dist.all_gather(parts, small)
                elif op == "reduce_scatter":
                    dist.reduce_scatter(small, parts)
                elif op == "broadcast":
                    dist.broadcast(big, 0)
                else:
                    raise SystemExit(f"unknown op {op}")

            try:
                for _ in range(warm):
                    call()
            except RuntimeError as e:
                if rank == 0:
                    print(f"{op:<16} unsupported by torch {torch.__version__} gloo: {str(e).splitlines()[0]}", flush=True)
                rows.append({"op": op, "bytes": total * es, "unsupported": str(e).splitlines()[0]})
                break
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                call()
            t = (time.perf_counter() - t0) / iters
            sz = total * es
            alg = sz / t / 1e9
            bus = alg * 2 * (n - 1) / n if op == "all_reduce" else alg if op == "broadcast" else alg * (n - 1) / n
            if rank == 0:
                print(f"{op:<16} {sz:>12} {iters:>8} {t * 1e6:>12.1f} {alg:>12.3f} {bus:>12.3f}", flush=True)
            rows.append({"op": op, "bytes": sz, "iters": iters, "time_us": t * 1e6, "algbw_GBps": alg, "busbw_GBps": bus})
            size *= 4
    if rank == 0 and a.json:
        with open(a.json, "w") as f:
            json.dump({"impl": "torch", "torch_version": torch.__version__, "world_size": n, "dtype": a.dtype, "rows": rows}, f,
                      indent=1)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
