#!/usr/bin/env python3
"""Attention benchmark driver: dsabi (bench/ops/attn_bench.c, ds_op_attention and its backward) beside
torch on the same cases in the same run, alternating round by round; best of the rounds.

  attn_torch.py run --device cpu|cuda --bench BUILD/bench/ops/attn_bench --out result.json
                    [--rounds 2] [--min-time 0.5] [--threads N] [--cases FILE] [--peak-tflops 989]

torch side: torch.nn.functional.scaled_dot_product_attention on the [B, S, H, D] tensors seen as
[B, H, S, D] (transposed views, no copy: the layout dsabi uses), is_causal for causal cases, enable_gqa
for grouped-query cases (older torch: k and v repeated per query head). torch without
scaled_dot_product_attention (Debian's 1.13 on the CPU machine): softmax(q k^T * scale + mask) v in the
case's dtype, the way a model without a fused kernel computes attention. Forward is timed under
torch.no_grad(); forward + backward is sdpa(q, k, v).backward(dout) with the gradients cleared each
call. Timing as attn_bench: inputs random in [-1, 1); warm-up until 0.1 s or 3 calls; batches of calls
between synchronisations until min-time has passed; the best batch's mean.
FLOPs: forward 4 B Hq S Skv D (halved for causal with S = Skv), backward 2.5 x forward.
ratio = dsabi TFLOP/s / torch TFLOP/s (> 1: dsabi faster); frac_peak = TFLOP/s / peak.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time


def parse_cases(text):
    cases = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 9 or f[0].startswith("#"):
            continue
        cases.append({"name": f[0], "dtype": f[1], "B": int(f[2]), "Hq": int(f[3]), "Hkv": int(f[4]), "S": int(f[5]),
                      "Skv": int(f[6]), "D": int(f[7]), "causal": int(f[8])})
    return cases


def fwd_flops(c):
    f = 4.0 * c["B"] * c["Hq"] * c["S"] * c["Skv"] * c["D"]
    return f / 2 if c["causal"] and c["S"] == c["Skv"] else f


def time_calls(fn, sync, min_time):
    t0 = time.perf_counter()
    warm = 0
    while warm < 3 or time.perf_counter() - t0 < 0.1:
        fn()
        sync()
        warm += 1
        if time.perf_counter() - t0 > 5.0:
            break
    per = (time.perf_counter() - t0) / warm
    batch = max(1, min(1000, int(min_time / 5.0 / max(per, 1e-9))))
    best, start, batches = float("inf"), time.perf_counter(), 0
    while batches < 2 or time.perf_counter() - start < min_time:
        s = time.perf_counter()
        for _ in range(batch):
            fn()
        sync()
        best = min(best, (time.perf_counter() - s) / batch)
        batches += 1
    return best


def torch_info(torch, device):
    info = {"torch_version": torch.__version__,
            "sdpa": hasattr(torch.nn.functional, "scaled_dot_product_attention")}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        for name in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled"):
            f = getattr(torch.backends.cuda, name, None)
            if f is not None:
                try:
                    info[name] = bool(f())
                except Exception:  # noqa: BLE001
                    pass
    else:
        info["threads"] = torch.get_num_threads()
        try:
            cfg = torch.__config__.show()
            for key in ("BLAS_INFO", "LAPACK_INFO", "CPU capability usage"):
                at = cfg.find(key)
                if at >= 0:
                    info[key] = cfg[at:].split(",")[0].split("\n")[0].split("=", 1)[-1].split(":", 1)[-1].strip()
        except Exception:  # noqa: BLE001
            pass
    return info


def sdpa_kernels(torch, fn):
    """Names of the CUDA kernels one call of fn launches (which SDPA backend torch picked)."""
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = sorted({e.key for e in prof.key_averages() if e.key})
        return [n[:120] for n in names][:12]
    except Exception as e:  # noqa: BLE001
        return ["(profiler unavailable: %s)" % e]


def time_torch(cases, device, min_time, threads):
    import torch
    import torch.nn.functional as F
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    rows = []
    kernels = {}
    for c in cases:
        dt = dtypes[c["dtype"]]
        B, Hq, Hkv, S, Skv, D, causal = c["B"], c["Hq"], c["Hkv"], c["S"], c["Skv"], c["D"], bool(c["causal"])
        row = {"name": c["name"]}
        try:
            q = torch.empty(B, S, Hq, D, dtype=dt, device=dev).uniform_(-1, 1).requires_grad_()
            k = torch.empty(B, Skv, Hkv, D, dtype=dt, device=dev).uniform_(-1, 1).requires_grad_()
            v = torch.empty(B, Skv, Hkv, D, dtype=dt, device=dev).uniform_(-1, 1).requires_grad_()
            dout = torch.empty(B, S, Hq, D, dtype=dt, device=dev).uniform_(-1, 1)
            scale = 1.0 / math.sqrt(D)
            gqa_via = None
            if has_sdpa:
                import inspect
                try:
                    has_gqa = "enable_gqa" in inspect.signature(F.scaled_dot_product_attention).parameters
                except (TypeError, ValueError):
                    has_gqa = False

                def attn(qq, kk, vv):
                    qh, kh, vh = qq.transpose(1, 2), kk.transpose(1, 2), vv.transpose(1, 2)
                    if Hq != Hkv:
                        if has_gqa:
                            return F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal, enable_gqa=True)
                        kh = kh.repeat_interleave(Hq // Hkv, dim=1)
                        vh = vh.repeat_interleave(Hq // Hkv, dim=1)
                    return F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)
                if Hq != Hkv:
                    gqa_via = "enable_gqa" if has_gqa else "repeat_interleave"
                impl = "F.scaled_dot_product_attention"
            else:
                mask = None
                if causal:
                    mask = torch.ones(S, Skv, dtype=torch.bool, device=dev).triu(Skv - S + 1)

                def attn(qq, kk, vv):
                    qh, kh, vh = qq.transpose(1, 2), kk.transpose(1, 2), vv.transpose(1, 2)
                    if Hq != Hkv:
                        kh = kh.repeat_interleave(Hq // Hkv, dim=1)
                        vh = vh.repeat_interleave(Hq // Hkv, dim=1)
                    s = torch.matmul(qh, kh.transpose(-1, -2)) * scale
                    if mask is not None:
                        s = s.masked_fill(mask, float("-inf"))
                    return torch.matmul(torch.softmax(s, dim=-1), vh)
                if Hq != Hkv:
                    gqa_via = "repeat_interleave"
                impl = "manual softmax(q k^T * scale + mask) v (this torch has no scaled_dot_product_attention)"

            def fwd():
                with torch.no_grad():
                    attn(q, k, v)

            def fwdbwd():
                q.grad = k.grad = v.grad = None
                attn(q, k, v).backward(dout.transpose(1, 2))

            row["torch_impl"] = impl
            if gqa_via:
                row["torch_gqa_via"] = gqa_via
            row["torch_fwd_s"] = time_calls(fwd, sync, min_time)
            row["torch_fwdbwd_s"] = time_calls(fwdbwd, sync, min_time)
            if device == "cuda" and c["name"] not in kernels:
                kernels[c["name"]] = {"fwd": sdpa_kernels(torch, fwd), "fwdbwd": sdpa_kernels(torch, fwdbwd)}
            del q, k, v, dout
            if device == "cuda":
                torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001
            row["torch_error"] = str(e)[:300]
        rows.append(row)
        ff = fwd_flops(c)
        unit, uname = (1e-12, "TFLOP/s") if device == "cuda" else (1e-9, "GFLOP/s")
        if "torch_fwd_s" in row:
            print(f"  torch {c['name']:<34} fwd {row['torch_fwd_s']*1e3:9.3f} ms {ff/row['torch_fwd_s']*unit:8.2f} {uname}"
                  f"   fwd+bwd {row['torch_fwdbwd_s']*1e3:9.3f} ms {3.5*ff/row['torch_fwdbwd_s']*unit:8.2f} {uname}",
                  flush=True)
        else:
            print(f"  torch {c['name']}: {row.get('torch_error')}", flush=True)
    return rows, kernels, torch_info(torch, device)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--device", choices=["cpu", "cuda"], required=True)
    r.add_argument("--bench", required=True, help="the attn_bench executable")
    r.add_argument("--out", required=True)
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--min-time", type=float, default=0.5)
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--cases")
    r.add_argument("--peak-tflops", type=float, default=None,
                   help="dense peak for frac_peak (default: 989 on CUDA, the H100/H200 SXM bf16 dense figure)")
    args = ap.parse_args()

    base = [args.bench, "--device", args.device]
    if args.cases:
        base += ["--cases", args.cases]
    text = subprocess.run(base + ["--print-cases"], check=True, capture_output=True, text=True).stdout
    cases = parse_cases(text)
    peak = args.peak_tflops if args.peak_tflops else (989.0 if args.device == "cuda" else None)

    best = {c["name"]: {} for c in cases}
    kernels, tinfo, dsinfo = {}, {}, {}
    have_torch = True
    try:
        import torch  # noqa: F401
    except Exception as e:  # noqa: BLE001
        have_torch = False
        print(f"attn_torch.py: cannot import torch ({e}); the torch columns are empty", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        cases_file = os.path.join(tmp, "cases.txt")
        with open(cases_file, "w") as f:
            f.write(text)
        for rnd in range(1, args.rounds + 1):
            print(f"== round {rnd}: dsabi", flush=True)
            js = os.path.join(tmp, f"ds{rnd}.json")
            cmd = [args.bench, "--device", args.device, "--cases", cases_file, "--min-time", str(args.min_time),
                   "--json", js]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            subprocess.run(cmd, check=True)
            ds = json.load(open(js))
            dsinfo = {k: ds[k] for k in ("threads", "cpu_isa", "device") if k in ds}
            for row in ds["rows"]:
                b = best[row["name"]]
                for key in ("fwd_s", "fwdbwd_s"):
                    b["dsabi_" + key] = min(b.get("dsabi_" + key, float("inf")), row[key])
            if have_torch:
                print(f"== round {rnd}: torch", flush=True)
                trows, k, tinfo = time_torch(cases, args.device, args.min_time, args.threads)
                kernels.update(k)
                for row in trows:
                    b = best[row["name"]]
                    for key in ("torch_impl", "torch_gqa_via", "torch_error"):
                        if key in row:
                            b[key] = row[key]
                    for key in ("torch_fwd_s", "torch_fwdbwd_s"):
                        if key in row:
                            b[key] = min(b.get(key, float("inf")), row[key])

    rows = []
    hdr = (f"{'case':<34} {'dtype':<5} {'fwd dsabi':>10} {'torch':>8} {'ratio':>6} {'%peak':>6}   "
           f"{'fwd+bwd dsabi':>13} {'torch':>8} {'ratio':>6} {'%peak':>6}   ({'TFLOP/s' if args.device == 'cuda' else 'GFLOP/s'})")
    print(hdr)
    unit = 1e-12 if args.device == "cuda" else 1e-9
    for c in cases:
        b = best[c["name"]]
        ff = fwd_flops(c)
        row = dict(c)
        row["fwd_flops"] = ff
        row["fwdbwd_flops"] = 3.5 * ff
        for part, fl in (("fwd", ff), ("fwdbwd", 3.5 * ff)):
            ds_s, t_s = b.get("dsabi_" + part + "_s"), b.get("torch_" + part + "_s")
            row["dsabi_" + part + "_ms"] = ds_s * 1e3 if ds_s else None
            row["torch_" + part + "_ms"] = t_s * 1e3 if t_s else None
            row["dsabi_" + part + "_tflops"] = fl / ds_s * 1e-12 if ds_s else None
            row["torch_" + part + "_tflops"] = fl / t_s * 1e-12 if t_s else None
            row[part + "_ratio"] = (t_s / ds_s) if (ds_s and t_s) else None
            row["dsabi_" + part + "_frac_peak"] = (fl / ds_s * 1e-12 / peak) if (ds_s and peak) else None
            row["torch_" + part + "_frac_peak"] = (fl / t_s * 1e-12 / peak) if (t_s and peak) else None
        for key in ("torch_impl", "torch_gqa_via", "torch_error"):
            if key in b:
                row[key] = b[key]
        rows.append(row)

        def f(x, scale=1.0, fmt="{:.2f}"):
            return fmt.format(x * scale) if x is not None else "-"
        print(f"{c['name']:<34} {c['dtype']:<5} "
              f"{f(row['dsabi_fwd_tflops'], 1e12 * unit):>10} {f(row['torch_fwd_tflops'], 1e12 * unit):>8} "
              f"{f(row['fwd_ratio']):>6} {f(row['dsabi_fwd_frac_peak'], 100, '{:.1f}'):>6}   "
              f"{f(row['dsabi_fwdbwd_tflops'], 1e12 * unit):>13} {f(row['torch_fwdbwd_tflops'], 1e12 * unit):>8} "
              f"{f(row['fwdbwd_ratio']):>6} {f(row['dsabi_fwdbwd_frac_peak'], 100, '{:.1f}'):>6}")

    result = {
        "what": "scaled dot-product attention, forward and forward + backward: dsabi ds_op_attention / "
                "ds_op_attention_backward vs torch in the same run",
        "date": datetime.date.today().isoformat(),
        "device": args.device,
        "host": {"machine": platform.machine(), "cpu": platform.processor() or platform.machine(),
                 "cores": os.cpu_count(), "load_avg": list(os.getloadavg())},
        "dsabi": dsinfo,
        # The attention implementation switches in effect (kernels/cuda/ops_attn.cu; unset: the defaults).
        "dsabi_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("DSABI_ATTN")},
        "torch": tinfo,
        "torch_kernels": kernels,
        "peak_tflops": peak,
        "rounds": args.rounds,
        "min_time_s": args.min_time,
        "method": "best batch mean over rounds, dsabi and torch alternating per round; FLOPs forward 4 B Hq S Skv D "
                  "(halved when causal with S = Skv), backward 2.5 x forward; ratio = torch time / dsabi time",
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
