#!/usr/bin/env bash
# Gloo over loopback: ds_comm (comm_bench) beside torch.distributed's gloo backend (torch_gloo.py)
# on the same sizes, alternating size by size for ROUNDS rounds (the best time of each is kept: the
# CI machine is shared and noisy). Prints the table and writes bench/results/<date>-comm-gloo.json
# (2 ranks) or <date>-comm-gloo-n<N>.json.
#
#   bench/comm/run_gloo.sh [BUILD_DIR] [NRANKS] [ROUNDS]        (defaults: build 2 2)
#   MIN_BYTES=1024 MAX_BYTES=268435456 OPS=all_reduce,all_gather,reduce_scatter,broadcast  (environment)
#
# The torch column is skipped with a message when /usr/bin/python3 cannot import torch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
nranks=${2:-2}
rounds=${3:-2}
ops=${OPS:-all_reduce,all_gather,reduce_scatter,broadcast}
max=${MAX_BYTES:-268435456}
dsrun=$build/bin/dsrun
bench=$build/bench/comm/comm_bench
[ -x "$bench" ] || bench=$build/bin/comm_bench
[ -x "$dsrun" ] && [ -x "$bench" ] || { echo "run_gloo.sh: build dsrun and comm_bench first (cmake --build $build)"; exit 1; }
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
have_torch=0
if $py -c 'import torch, torch.distributed as d; assert d.is_gloo_available()' 2>/dev/null; then have_torch=1; else
  echo "run_gloo.sh: torch is not importable by $py: the torch column is skipped"; fi
# Size by size, the two implementations alternate ROUNDS times, so that a change in the machine's
# load hits both alike; the best time of each is kept.
min=${MIN_BYTES:-1024}
size=$min
while [ "$size" -le "$max" ]; do
  for r in $(seq "$rounds"); do
    "$dsrun" -n "$nranks" --master-port 0 --no-prefix "$bench" --ops "$ops" --min-bytes "$size" --max-bytes "$size" \
      --json "$tmp/ds.$size.$r.json" | tail -n +2 | sed "s/^/dsabi  /"
    if [ $have_torch = 1 ]; then
      "$dsrun" -n "$nranks" --master-port 0 --no-prefix $py "$here/torch_gloo.py" --ops "$ops" --min-bytes "$size" \
        --max-bytes "$size" --json "$tmp/torch.$size.$r.json" | tail -n +2 | sed "s/^/torch  /"
    fi
  done
  size=$((size * 4))
done
mkdir -p "$root/bench/results"
suffix=""; [ "$nranks" = 2 ] || suffix="-n$nranks"
out="$root/bench/results/$(date +%Y-%m-%d)-comm-gloo$suffix.json"
$py - "$tmp" "$rounds" "$nranks" "$out" <<'PY'
import glob, json, os, platform, sys, datetime
tmp, rounds, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def best(prefix):
    rows, meta = {}, None
    for f in sorted(glob.glob(os.path.join(tmp, prefix + ".*.json"))):
        d = json.load(open(f))
        meta = {k: v for k, v in d.items() if k != "rows"}
        for r in d["rows"]:
            key = (r["op"], r["bytes"])
            if "unsupported" in r:
                rows.setdefault(key, r)
            elif key not in rows or "unsupported" in rows[key] or r["time_us"] < rows[key]["time_us"]:
                rows[key] = r
    return rows, meta
ds, ds_meta = best("ds")
th, th_meta = best("torch")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print()
print(f"Gloo over loopback, {n} ranks, f32, best of {rounds} rounds; bus bandwidth GB/s (nccl-tests formulas); "
      f"ratio = torch time / dsabi time (>= 1: dsabi faster)")
print(f"{'op':<15} {'bytes':>11} {'dsabi_us':>11} {'torch_us':>11} {'dsabi_bus':>10} {'torch_bus':>10} {'ratio':>7}")
table = []
for (op, b), r in sorted(ds.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    t = th.get((op, b))
    row = {"op": op, "bytes": b, "dsabi_time_us": r["time_us"], "dsabi_busbw_GBps": r["busbw_GBps"], "iters": r["iters"]}
    if t and "unsupported" not in t:
        row.update({"torch_time_us": t["time_us"], "torch_busbw_GBps": t["busbw_GBps"], "ratio_torch_over_dsabi": t["time_us"] / r["time_us"]})
        print(f"{op:<15} {b:>11} {r['time_us']:>11.1f} {t['time_us']:>11.1f} {r['busbw_GBps']:>10.3f} {t['busbw_GBps']:>10.3f} {row['ratio_torch_over_dsabi']:>7.2f}")
    else:
        why = t["unsupported"] if t else "no torch"
        row["torch"] = why
        print(f"{op:<15} {b:>11} {r['time_us']:>11.1f} {'-':>11} {r['busbw_GBps']:>10.3f} {'-':>10} {'-':>7}  ({why})")
    table.append(row)
ratios = [r["ratio_torch_over_dsabi"] for r in table if "ratio_torch_over_dsabi" in r]
summary = {}
if ratios:
    import statistics
    summary = {"min_ratio": min(ratios), "median_ratio": statistics.median(ratios),
               "rows_below_0.9": [f"{r['op']}@{r['bytes']}" for r in table if r.get("ratio_torch_over_dsabi", 9) < 0.9]}
    print(f"\nratio torch/dsabi: min {summary['min_ratio']:.2f}, median {summary['median_ratio']:.2f}; below 0.9: {summary['rows_below_0.9'] or 'none'}")
doc = {"what": "Gloo all_reduce / all_gather / reduce_scatter / broadcast over TCP loopback: dsabi ds_comm vs torch.distributed gloo",
       "date": datetime.date.today().isoformat(), "host": {"cpu": cpu, "cores": os.cpu_count(), "load_avg": os.getloadavg()},
       "world_size": n, "dtype": "f32", "rounds": rounds,
       "method": "mean of synchronous calls after a barrier (rank 0); sizes alternate dsabi/torch, best of rounds",
       "dsabi": ds_meta, "torch": th_meta, "rows": table, "summary": summary}
json.dump(doc, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
