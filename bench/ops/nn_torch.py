#!/usr/bin/env python3
"""The nn family's ops beside PyTorch, in one run on one machine: runs bench/ops/nn_bench (dsabi) for a
preset, times the torch equivalent of every op on the same shapes and dtypes, and writes one JSON with
both times, GB/s (the same minimal byte count for both), their ratio and the copy-bandwidth floor.

    python3 bench/ops/nn_torch.py --bench BUILD/bench/ops/nn_bench --device cuda --json out.json

torch equivalents: F.layer_norm; F.rms_norm where this torch has it, else the usual composite
(x * rsqrt(mean(x^2) + eps) * w in f32, as Llama's reference code); torch.softmax and
aten._softmax_backward_data; F.cross_entropy (reduction='none' for the forward, the mean and
autograd for forward + backward); F.gelu(approximate='tanh') and aten.gelu_backward; F.silu(g) * u;
RoPE as the Hugging Face apply (x * cos + rotate_half(x) * sin, cos/sin precomputed); F.embedding and
aten.embedding_dense_backward; F.dropout. Backward ops of the norms run autograd on a retained graph.
Timing: warm-up, then 5 batches (CUDA events on the GPU, perf_counter on the CPU), median per call.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def timer(dev, fn, batch_s):
    for _ in range(3):
        fn()
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, min(100000, int(batch_s / one)))
    per = []
    for _ in range(5):
        if dev == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(iters):
                fn()
            b.record()
            b.synchronize()
            per.append(a.elapsed_time(b) / 1e3 / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            per.append((time.perf_counter() - t0) / iters)
    per.sort()
    return per[2]


def rms_norm(x, w, eps):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def rms_impl():
    return "F.rms_norm" if hasattr(F, "rms_norm") else "composite x*rsqrt(mean(x^2)+eps)*w (f32)"


def make(name, dtype, n, d, dev):
    """The timed function of op `name` on [n, d] of dtype, and a note on what torch runs."""
    dt = DT[dtype]
    g = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape, lo=-1.0, hi=1.0):
        return (torch.rand(*shape, generator=g) * (hi - lo) + lo).to(dev, dt)

    if name in ("layer_norm_fwd", "layer_norm_bwd", "rms_norm_fwd", "rms_norm_bwd"):
        x, w, b, dy = rnd(n, d, lo=-2, hi=2), rnd(d, lo=0.5, hi=1.5), rnd(d, lo=-0.1, hi=0.1), rnd(n, d)
        rms = name.startswith("rms")
        if name.endswith("fwd"):
            if rms:
                return (lambda: rms_norm(x, w, 1e-5)), rms_impl()
            return (lambda: F.layer_norm(x, (d,), w, b, 1e-5)), "F.layer_norm"
        x.requires_grad_(True), w.requires_grad_(True), b.requires_grad_(True)
        if rms:
            y = rms_norm(x, w, 1e-5)
            return (lambda: torch.autograd.grad(y, (x, w), dy, retain_graph=True)), "autograd of " + rms_impl()
        y = F.layer_norm(x, (d,), w, b, 1e-5)
        return (lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)), "autograd of F.layer_norm"
    if name == "softmax_fwd":
        x = rnd(n, d, lo=-4, hi=4)
        return (lambda: torch.softmax(x, -1)), "torch.softmax"
    if name == "softmax_bwd":
        y = torch.softmax(rnd(n, d, lo=-4, hi=4), -1)
        dy = rnd(n, d)
        return (lambda: torch.ops.aten._softmax_backward_data(dy, y, -1, dt)), "aten._softmax_backward_data"
    if name.startswith("cross_entropy"):
        logits = rnd(n, d, lo=-4, hi=4)
        t = torch.randint(0, d, (n,), generator=g).to(dev)
        if name == "cross_entropy_fwd":
            return (lambda: F.cross_entropy(logits, t, reduction="none")), "F.cross_entropy(reduction='none')"
        lr = logits.clone().requires_grad_(True)
        return (lambda: torch.autograd.grad(F.cross_entropy(lr, t), lr)), "F.cross_entropy + autograd (mean)"
    if name == "gelu_tanh_fwd":
        x = rnd(n, d, lo=-4, hi=4)
        return (lambda: F.gelu(x, approximate="tanh")), "F.gelu(approximate='tanh')"
    if name == "gelu_tanh_bwd":
        x, dy = rnd(n, d, lo=-4, hi=4), rnd(n, d)
        return (lambda: torch.ops.aten.gelu_backward(dy, x, approximate="tanh")), "aten.gelu_backward"
    if name == "swiglu_fwd":
        gt, up = rnd(n, d, lo=-4, hi=4), rnd(n, d, lo=-2, hi=2)
        return (lambda: F.silu(gt) * up), "F.silu(gate) * up"
    if name == "rope_fwd":
        h, hd = d // 128, 128
        x = rnd(n, h, hd)
        pos = torch.randint(0, 4096, (n,), generator=g).to(dev)
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, device=dev).float() / hd))
        fr = pos.float()[:, None] * inv[None, :]
        emb = torch.cat((fr, fr), -1)
        cos, sin = emb.cos().to(dt)[:, None, :], emb.sin().to(dt)[:, None, :]

        def rope():
            x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
            return x * cos + torch.cat((-x2, x1), -1) * sin
        return rope, "HF apply_rotary_pos_emb (cos/sin precomputed)"
    if name in ("embedding_fwd", "embedding_bwd"):
        v = 50304
        w = rnd(v, d)
        ids = torch.randint(0, v, (n,), generator=g).to(dev)
        if name == "embedding_fwd":
            return (lambda: F.embedding(ids, w)), "F.embedding"
        dout = rnd(n, d)
        return (lambda: torch.ops.aten.embedding_dense_backward(dout, ids, v, -1, False)), \
            "aten.embedding_dense_backward (returns a new [V, D])"
    if name == "dropout_fwd":
        x = rnd(n, d)
        return (lambda: F.dropout(x, 0.1, training=True)), "F.dropout"
    raise SystemExit(f"nn_torch.py: unknown op {name}")


def torch_copy_gbps(dev, elems, batch_s):
    a = torch.rand(elems, device=dev)
    b = torch.empty_like(a)
    t = timer(dev, lambda: b.copy_(a), batch_s)
    return 2 * elems * 4 / t / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="the nn_bench program")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--preset")
    ap.add_argument("--ops")
    ap.add_argument("--batch-ms", type=float)
    ap.add_argument("--json", required=True)
    ap.add_argument("--ds-json", help="reuse this nn_bench output instead of running it")
    a = ap.parse_args()
    preset = a.preset or ("gpu" if a.device == "cuda" else "cpu")
    batch_ms = a.batch_ms or (60 if a.device == "cuda" else 150)

    if a.ds_json:
        ds = json.load(open(a.ds_json))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ds.json")
            cmd = [a.bench, "--device", a.device, "--preset", preset, "--batch-ms", str(batch_ms), "--json", path]
            if a.ops:
                cmd += ["--ops", a.ops]
            subprocess.run(cmd, check=True)
            ds = json.load(open(path))

    if a.device == "cpu":
        torch.set_num_threads(int(ds.get("threads", os.cpu_count() or 1)))
    dev = a.device
    copy_elems = (1 << 28) if dev == "cuda" else (1 << 25)
    tcopy = torch_copy_gbps(dev, copy_elems, batch_ms * 1e-3)
    copy_bw = max(ds["copy"]["gbps"], tcopy)

    rows = []
    print(f"\n{'op':<22} {'dtype':<5} {'shape':<15} {'dsabi us':>10} {'GB/s':>8} {'torch us':>10} {'GB/s':>8} "
          f"{'torch/ds':>8} {'ds/copy':>8}")
    for r in ds["ops"]:
        fn, note = make(r["op"], r["dtype"], r["rows"], r["cols"], dev)
        t = timer(dev, fn, batch_ms * 1e-3)
        del fn
        if dev == "cuda":
            torch.cuda.empty_cache()
        ds_s = r["ms"] / 1e3
        row = {
            "op": r["op"], "dtype": r["dtype"], "shape": [r["rows"], r["cols"]], "bytes": r["bytes"],
            "dsabi_us": round(ds_s * 1e6, 2), "dsabi_gbps": round(r["gbps"], 1),
            "torch_us": round(t * 1e6, 2), "torch_gbps": round(r["bytes"] / t / 1e9, 1), "torch_impl": note,
            "torch_over_dsabi": round(t / ds_s, 3),
            "floor_us": round(r["bytes"] / (copy_bw * 1e9) * 1e6, 2),
            "dsabi_fraction_of_copy": round(r["gbps"] / copy_bw, 3),
        }
        rows.append(row)
        shape = f"[{r['rows']}, {r['cols']}]"
        print(f"{r['op']:<22} {r['dtype']:<5} {shape:<15} {row['dsabi_us']:>10.1f} {row['dsabi_gbps']:>8.1f} "
              f"{row['torch_us']:>10.1f} {row['torch_gbps']:>8.1f} {row['torch_over_dsabi']:>8.2f} "
              f"{row['dsabi_fraction_of_copy']:>8.2f}", flush=True)

    out = {
        "benchmark": "nn-ops",
        "date": datetime.date.today().isoformat() if not os.environ.get("BENCH_DATE") else os.environ["BENCH_DATE"],
        "device": dev,
        "device_name": ds.get("device_name"),
        "dsabi": {"cpu_isa": ds.get("cpu_isa"), "threads": ds.get("threads")},
        "torch": {"version": torch.__version__, "threads": torch.get_num_threads() if dev == "cpu" else None},
        "method": ("bytes = each input read once + each output written once (minimal traffic); per call: median of "
                   "5 batches of ~%g ms after warm-up; dsabi timed by nn_bench (wall clock, device synchronised "
                   "around each batch), torch in this process (%s); floor = bytes / copy bandwidth"
                   % (batch_ms, "CUDA events" if dev == "cuda" else "perf_counter")),
        "copy_gbps": {"ds_tensor_copy": ds["copy"]["gbps"], "torch_copy_": round(tcopy, 1), "used": round(copy_bw, 1)},
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "results": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"\nwrote {a.json} (copy bandwidth {copy_bw:.1f} GB/s: ds_tensor_copy {ds['copy']['gbps']:.1f}, "
          f"torch copy_ {tcopy:.1f})")


if __name__ == "__main__":
    sys.exit(main())
