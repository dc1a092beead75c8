#!/usr/bin/env python3
"""torch side of the gemm benchmark (bench/ops/gemm_bench.c) and the merge of the two.

  gemm_torch.py time  --device cpu|cuda --cases FILE --json out.json [--min-time 0.5] [--threads N]
  gemm_torch.py merge --device cpu|cuda --ds ds1.json [ds2.json ...] --torch t1.json [t2.json ...]
                      --out result.json [--peak-tflops X] [--bandwidth-GBps 3000]

time: the cases of FILE (gemm_bench --print-cases) timed the way gemm_bench times dsabi: inputs
random in [-1, 1); warm-up; batches of calls between synchronisations until min-time passed; the
best batch's mean. gemm rows: torch.mm(a, b or b.t(), out=c) (the cuBLAS / CPU BLAS call of
torch.matmul and F.linear) with a and b of the case's dtype. wq rows: the dense reference a decode
step would otherwise run, torch.mm(x, w.t()) with w in the case's dtype (bf16).
merge: the best time of each case over every file, ratios torch_time / dsabi_time (>= 1: dsabi as
fast or faster), dsabi TFLOP/s as a fraction of the peak, and for wq rows the floor = quantized
weight bytes / bandwidth.
"""
import argparse
import datetime
import json
import math
import os
import platform
import sys
import time


def parse_cases(path):
    cases = []
    for line in open(path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "gemm":
            cases.append({"kind": "gemm", "name": f[1], "dtype": f[2], "m": int(f[3]), "n": int(f[4]), "k": int(f[5]),
                          "trans_a": int(f[6]), "trans_b": int(f[7])})
        elif f[0] == "wq":
            cases.append({"kind": "wq", "name": f[1], "dtype": f[2], "m": int(f[3]), "n": int(f[4]), "k": int(f[5]),
                          "bits": int(f[6]), "group": int(f[7]), "symmetric": int(f[8])})
    return cases


def cmd_time(args):
    import torch
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    rows = []
    print(f"{'case':<28} {'dtype':<5} {'M':>7} {'N':>7} {'K':>7} {'time_us':>11} {'TFLOP/s':>9}")
    for c in parse_cases(args.cases):
        dt = dtypes[c["dtype"]]
        m, n, k = c["m"], c["n"], c["k"]
        try:
            if c["kind"] == "gemm":
                a = torch.empty((k, m) if c["trans_a"] else (m, k), dtype=dt, device=dev).uniform_(-1, 1)
                b = torch.empty((n, k) if c["trans_b"] else (k, n), dtype=dt, device=dev).uniform_(-1, 1)
                out = torch.empty((m, n), dtype=dt, device=dev)
                aa = a.t() if c["trans_a"] else a
                bb = b.t() if c["trans_b"] else b
                fn = lambda: torch.mm(aa, bb, out=out)
            else:  # dense reference of the quantized linear: x @ w^T in the case's dtype
                x = torch.empty((m, k), dtype=dt, device=dev).uniform_(-1, 1)
                w = torch.empty((n, k), dtype=dt, device=dev).uniform_(-1, 1)
                out = torch.empty((m, n), dtype=dt, device=dev)
                wt = w.t()
                fn = lambda: torch.mm(x, wt, out=out)
            t0 = time.perf_counter()
            warm = 0
            while warm < 3 or time.perf_counter() - t0 < 0.1:
                fn()
                warm += 1
                if warm >= 1000:
                    break
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            one = time.perf_counter() - t0
            per_batch = max(1, min(20000, int(0.05 / one) if one > 0 else 1000))
            best, start, batches = 1e30, time.perf_counter(), 0
            while batches < 3 or time.perf_counter() - start < args.min_time:
                b0 = time.perf_counter()
                for _ in range(per_batch):
                    fn()
                sync()
                best = min(best, (time.perf_counter() - b0) / per_batch)
                batches += 1
            row = dict(c, time_us=best * 1e6, tflops=2.0 * m * n * k / best / 1e12)
            print(f"{c['name']:<28} {c['dtype']:<5} {m:>7} {n:>7} {k:>7} {best*1e6:>11.2f} {row['tflops']:>9.4f}", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            row = dict(c, unsupported=str(e))
            print(f"{c['name']:<28} unsupported: {e}", flush=True)
        rows.append(row)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.device == "cuda":
        info["device_name"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    json.dump({"device": args.device, **info, "rows": rows}, open(args.json, "w"), indent=1)


def cpu_info():
    name, mhz = platform.processor(), None
    vendor, family = "", ""
    flags = ""
    for line in open("/proc/cpuinfo"):
        key = line.split(":", 1)[0].strip()
        val = line.split(":", 1)[1].strip() if ":" in line else ""
        if key == "model name":
            name = val
        elif key == "cpu MHz" and mhz is None:
            mhz = float(val)
        elif key == "vendor_id":
            vendor = val
        elif key == "cpu family":
            family = val
        elif key == "flags" and not flags:
            flags = val
    cores = os.cpu_count()
    # f32 FLOP per cycle per core: AMD Zen 4 (family 25) runs AVX-512 on two 256-bit FMA pipes (32);
    # Intel AVX-512 server cores have two 512-bit FMA units (64); AVX2 + FMA: 32.
    if "avx512f" in flags.split():
        per_cycle = 32 if vendor == "AuthenticAMD" else 64
    elif "fma" in flags.split():
        per_cycle = 32
    else:
        per_cycle = 8
    peak = cores * (mhz or 0) * 1e6 * per_cycle / 1e12
    return {"cpu": name, "cores": cores, "mhz": mhz, "flops_per_cycle_per_core": per_cycle, "peak_tflops_f32": peak,
            "load_avg": os.getloadavg()}


def cmd_merge(args):
    def best_rows(paths):
        rows, meta = {}, {}
        for p in paths:
            d = json.load(open(p))
            meta = {k: v for k, v in d.items() if k != "rows"}
            for r in d["rows"]:
                key = r["name"]
                if "unsupported" in r:
                    rows.setdefault(key, r)
                elif key not in rows or "unsupported" in rows[key] or r["time_us"] < rows[key]["time_us"]:
                    rows[key] = r
        return rows, meta

    ds, ds_meta = best_rows(args.ds)
    th, th_meta = best_rows(args.torch) if args.torch else ({}, {})
    host = cpu_info()
    if args.device == "cuda":
        # H100 and H200 SXM (same compute): dense bf16/f16 tensor cores, f32 on the CUDA cores (no TF32)
        peaks = {"bf16": 989.0, "f16": 989.0, "f32": 67.0}
        if args.peak_tflops:
            peaks = {k: args.peak_tflops for k in peaks}
        peak_note = "dense peak: 989 TFLOP/s bf16/f16 tensor cores, 67 TFLOP/s f32 (H100/H200 SXM)"
    else:
        measured = max((json.load(open(f)).get("measured_peak_gflops", 0) for f in args.ds), default=0) / 1000.0
        host["measured_peak_tflops_f32"] = measured
        p = args.peak_tflops or max(measured, host["peak_tflops_f32"])
        peaks = {"f32": p, "f16": p, "bf16": p}
        peak_note = (f"peak = max(nominal {host['cores']} cores x {host['mhz']} MHz x {host['flops_per_cycle_per_core']} "
                     f"FLOP/cycle = {host['peak_tflops_f32'] * 1000:.1f} GFLOP/s, measured f32 FMA loop on every thread "
                     f"{measured * 1000:.1f} GFLOP/s) = {p * 1000:.1f} GFLOP/s; the cores boost above the nominal MHz and "
                     f"the machine is shared, so of_peak > 1 is possible; bf16 rows use the f32 peak (AVX512_BF16 "
                     f"doubles the multiply rate)")
    bw = args.bandwidth_GBps * 1e9
    table = []
    unit, scale = ("TFLOP/s", 1.0) if args.device == "cuda" else ("GFLOP/s", 1000.0)
    print()
    print(f"ratio = torch time / dsabi time (>= 1: dsabi as fast or faster); {peak_note}")
    print(f"{'case':<30} {'dtype':<5} {'dsabi_us':>10} {'torch_us':>10} {'dsabi_' + unit:>15} {'torch_' + unit:>15} "
          f"{'ratio':>6} {'of_peak':>7} {'floor_us':>9} {'x_floor':>7}")
    for name, r in ds.items():
        row = {k: v for k, v in r.items() if k not in ("time_us", "tflops")}
        row["dsabi_time_us"] = r["time_us"]
        row["dsabi_tflops"] = r["tflops"]
        row["dsabi_fraction_of_peak"] = r["tflops"] / peaks[r["dtype"]]
        t = th.get(name)
        if t and "unsupported" not in t:
            row["torch_time_us"] = t["time_us"]
            row["torch_tflops"] = t["tflops"]
            row["ratio_torch_over_dsabi"] = t["time_us"] / r["time_us"]
            if r["kind"] == "wq":
                row["torch_is"] = f"dense {r['dtype']} torch.mm(x, w.t())"
        elif t:
            row["torch"] = t["unsupported"]
        floor_us = None
        if r["kind"] == "wq" and r.get("weight_bytes"):
            floor_us = r["weight_bytes"] / bw * 1e6
            row["floor_us"] = floor_us
            row["floor_over_dsabi"] = floor_us / r["time_us"]
        table.append(row)
        ts = f"{row['torch_time_us']:>10.2f}" if "torch_time_us" in row else f"{'-':>10}"
        tt = f"{row['torch_tflops'] * scale:>15.3f}" if "torch_tflops" in row else f"{'-':>15}"
        rt = f"{row['ratio_torch_over_dsabi']:>6.3f}" if "ratio_torch_over_dsabi" in row else f"{'-':>6}"
        fl = f"{floor_us:>9.2f} {floor_us / r['time_us']:>7.3f}" if floor_us else f"{'':>9} {'':>7}"
        print(f"{name:<30} {r['dtype']:<5} {r['time_us']:>10.2f} {ts} {r['tflops'] * scale:>15.3f} {tt} {rt} "
              f"{row['dsabi_fraction_of_peak']:>7.3f} {fl}")
    gem = [x["ratio_torch_over_dsabi"] for x in table if x["kind"] == "gemm" and "ratio_torch_over_dsabi" in x]
    summary = {}
    if gem:
        summary = {"gemm_min_ratio": min(gem), "gemm_geomean_ratio": math.exp(sum(math.log(v) for v in gem) / len(gem)),
            "gemm_rows_below_0.97": [x["name"] for x in table if x["kind"] == "gemm" and x.get("ratio_torch_over_dsabi", 9) < 0.97]}
        print(f"\ngemm ratio torch/dsabi: min {summary['gemm_min_ratio']:.3f}, geomean {summary['gemm_geomean_ratio']:.3f}; "
              f"below 0.97: {summary['gemm_rows_below_0.97'] or 'none'}")
    doc = {"what": f"ds_op_gemm and ds_op_gemm_wq vs torch.mm on {args.device}",
           "date": datetime.date.today().isoformat(), "device": args.device, "host": host,
           "dsabi": ds_meta, "torch": th_meta, "peak_note": peak_note, "peaks_tflops": peaks,
           "bandwidth_floor_GBps": args.bandwidth_GBps,
           "method": "per-call time = best mean over batches of calls between synchronisations (warm-up first); "
                     "dsabi and torch alternate round by round; best of all rounds; inputs uniform in [-1, 1); "
                     "calls are issued back to back from the host, so a kernel shorter than the per-call host cost "
                     "(a few microseconds on CUDA: argument checks and the launch) is timed at that cost (decode rows)",
           "rows": table, "summary": summary}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump(doc, open(args.out, "w"), indent=1)
    print(f"wrote {args.out}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--device", default="cpu")
    t.add_argument("--cases", required=True)
    t.add_argument("--json", required=True)
    t.add_argument("--min-time", type=float, default=0.5)
    t.add_argument("--threads", type=int, default=0)
    m = sub.add_parser("merge")
    m.add_argument("--device", default="cpu")
    m.add_argument("--ds", nargs="+", required=True)
    m.add_argument("--torch", nargs="*", default=[])
    m.add_argument("--out", required=True)
    m.add_argument("--peak-tflops", type=float, default=0.0)
    m.add_argument("--bandwidth-GBps", type=float, default=3000.0)
    args = ap.parse_args()
    if args.cmd == "time":
        cmd_time(args)
    else:
        cmd_merge(args)


if __name__ == "__main__":
    sys.exit(main())
