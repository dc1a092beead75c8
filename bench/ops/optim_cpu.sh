#!/usr/bin/env bash
# CPU AdamW: ds_op_optim_step (optim_bench) beside torch.optim.AdamW(foreach=True) (optim_torch.py) on
# the same parameter count and thread counts, plus the memory-bandwidth floor measured on the same
# buffers (STREAM copy/triad and the Adam access pattern rmw4r3w, see optim_bench.c). The two
# implementations alternate ROUNDS times (the machine is shared: the best time of each is kept).
# Prints the table and writes bench/results/2026-11-21-optim-cpu.json (or OUT_JSON).
#
#   bench/ops/optim_cpu.sh [BUILD_DIR] [OUT_JSON]
#   N=1e8 THREADS=1,2 ROUNDS=2 ITERS=8   (environment)
#
# The torch column is skipped with a message when /usr/bin/python3 cannot import torch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/bench/results/2026-11-21-optim-cpu.json}
n=${N:-1e8}
threads=${THREADS:-1,2}
rounds=${ROUNDS:-2}
iters=${ITERS:-8}
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$build/bench/ops" "$(dirname "$out")"
bench=$build/bench/ops/optim_bench
cc -O3 -march=native -fopenmp -std=c11 -Wall -Wextra -I"$root/include" "$here/optim_bench.c" \
   -L"$build/lib" -Wl,-rpath,"$build/lib" -ldsabi -o "$bench"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
have_torch=0
if $py -c 'import torch' 2>/dev/null; then have_torch=1; else echo "optim_cpu.sh: $py cannot import torch: the torch column is skipped"; fi
for r in $(seq "$rounds"); do
  echo "== round $r: dsabi"
  "$bench" --n "$n" --threads "$threads" --iters "$iters" --stream 1 --json "$tmp/ds.$r.json"
  "$bench" --n "$n" --threads "$threads" --iters "$iters" --stream 0 --grad bf16 --lp bf16 --json "$tmp/dsbf.$r.json" | tail -n +2
  "$bench" --n "$n" --threads "$threads" --iters "$iters" --stream 0 --check-finite 1 --json "$tmp/dscf.$r.json" | tail -n +2
  if [ $have_torch = 1 ]; then
    echo "== round $r: torch"
    $py "$here/optim_torch.py" --n "$n" --threads "$threads" --iters "$iters" --impl foreach --json "$tmp/torch.$r.json"
  fi
done
$py - "$tmp" "$out" <<'PY'
import datetime, glob, json, os, platform, sys
tmp, out = sys.argv[1], sys.argv[2]
def load(prefix):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(tmp, prefix + ".*.json")))]
def best_rows(docs):
    best = {}
    for d in docs:
        for r in d["rows"]:
            if "best_s" in r and (r["threads"] not in best or r["best_s"] < best[r["threads"]]["best_s"]):
                best[r["threads"]] = r
    return best
ds, dsbf, dscf, th = load("ds"), load("dsbf"), load("dscf"), load("torch")
n = ds[0]["n"]
bytes_per = ds[0]["bytes_per_param"]
stream = {}
for d in ds:
    for s in d.get("stream", []):
        k = (s["kernel"], s["threads"])
        if k not in stream or s["GBps"] > stream[k]["GBps"]:
            stream[k] = s
bw_rmw = max((s["GBps"] for (k, t), s in stream.items() if k == "rmw4r3w"), default=0.0)
floor_s = bytes_per * n / (bw_rmw * 1e9) if bw_rmw else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
dsb, dsbfb, dscfb, thb = best_rows(ds), best_rows(dsbf), best_rows(dscf), best_rows(th)
print()
print(f"CPU AdamW, {n:.0e} f32 params ({bytes_per:.0f} B/param), best of {len(ds)} rounds x {ds[0]['iters']} steps; "
      f"cpu isa {ds[0]['cpu_isa']}; {cpu}, {os.cpu_count()} cores")
print(f"memory floor: {bytes_per:.0f} B x n / {bw_rmw:.1f} GB/s (rmw4r3w, the Adam access pattern) = "
      + (f"{floor_s:.4f} s" if floor_s else "n/a"))
print(f"{'threads':>7} {'dsabi_s':>9} {'GB/s':>7} {'x_floor':>8} {'torch_s':>9} {'torch/dsabi':>12} {'bf16g+lp_s':>11} {'check_fin_s':>12}")
table = []
for t in sorted(dsb):
    r = dsb[t]
    row = {"threads": t, "dsabi_best_s": r["best_s"], "dsabi_median_s": r["median_s"], "dsabi_GBps": r["GBps"]}
    if floor_s:
        row["dsabi_over_floor"] = r["best_s"] / floor_s
    if t in thb:
        row["torch_foreach_best_s"] = thb[t]["best_s"]
        row["torch_foreach_median_s"] = thb[t]["median_s"]
        row["speedup_vs_torch"] = thb[t]["best_s"] / r["best_s"]
    if t in dsbfb:
        row["dsabi_bf16_grads_bf16_lp_best_s"] = dsbfb[t]["best_s"]
    if t in dscfb:
        row["dsabi_check_finite_best_s"] = dscfb[t]["best_s"]
    table.append(row)
    f = lambda k, fmt: (fmt % row[k]) if k in row else "-"
    print(f"{t:>7} {r['best_s']:>9.4f} {r['GBps']:>7.1f} {f('dsabi_over_floor', '%.2f'):>8} {f('torch_foreach_best_s', '%.4f'):>9} "
          f"{f('speedup_vs_torch', '%.2f'):>12} {f('dsabi_bf16_grads_bf16_lp_best_s', '%.4f'):>11} {f('dsabi_check_finite_best_s', '%.4f'):>12}")
print()
print(f"{'bandwidth':<10} {'threads':>7} {'GB/s':>8}   (copy/triad counted the STREAM way; rmw4r3w counts 28 B/elem)")
for (k, t), s in sorted(stream.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    print(f"{k:<10} {t:>7} {s['GBps']:>8.1f}")
doc = {"what": "CPU AdamW step over 1e8 f32 params: dsabi ds_op_optim_step vs torch.optim.AdamW(foreach=True), and the DRAM floor",
       "date": datetime.date.today().isoformat(),
       "host": {"cpu": cpu, "cores": os.cpu_count(), "load_avg": os.getloadavg()},
       "n": n, "bytes_per_param": bytes_per, "floor_bandwidth_GBps": bw_rmw, "floor_s": floor_s,
       "method": "best of rounds (dsabi and torch alternate), each round: 1 warm-up step + iters timed steps; "
                 "floor = bytes_per_param * n / bandwidth of rmw4r3w (x+=y, m+=y, v+=y: the same 4 reads / 3 in-place writes)",
       "dsabi": {k: v for k, v in ds[0].items() if k not in ("rows", "stream")},
       "torch": {k: v for k, v in th[0].items() if k != "rows"} if th else None,
       "rows": table, "bandwidth": [dict(s) for s in stream.values()]}
json.dump(doc, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
