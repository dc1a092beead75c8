#!/usr/bin/env bash
# CPU table of the nn family: bench/ops/nn_bench on the CPU beside Debian's torch (/usr/bin/python3) in
# the same run, with 1 thread and with every core (dsabi and torch get the same count); writes
# bench/results/2026-11-21-nn-cpu.json (or the path given second) holding both runs.
#   bench/ops/nn_cpu.sh BUILD_DIR [OUT_JSON]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: nn_cpu.sh BUILD_DIR [OUT_JSON]}" && pwd)
result=${2:-$root/bench/results/2026-11-21-nn-cpu.json}
mkdir -p "$build/bench/ops"
cc -O2 -std=c11 -Wall -Wextra -I"$root/include" "$here/nn_bench.c" -L"$build/lib" -Wl,-rpath,"$build/lib" \
   -ldsabi -lm -o "$build/bench/ops/nn_bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cores=$(nproc)
for t in 1 "$cores"; do
  echo "== $t thread(s)"
  OMP_NUM_THREADS=$t BENCH_DATE=2026-11-21 /usr/bin/python3 "$here/nn_torch.py" --bench "$build/bench/ops/nn_bench" \
    --device cpu --json "$tmp/t$t.json"
done
/usr/bin/python3 - "$tmp/t1.json" "$tmp/t$cores.json" "$result" <<'PY'
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:3]]
out = {k: runs[0][k] for k in ("benchmark", "date", "device", "device_name", "method")}
out["note"] = ("two runs, dsabi and torch with the same thread count; this is a shared 2-core VM where other "
               "work may run at the same time (load_average_after in each run): compare within a run")
out["runs"] = [{"threads": r["dsabi"]["threads"], "torch": r["torch"], "cpu_isa": r["dsabi"]["cpu_isa"],
                "copy_gbps": r["copy_gbps"], "load_average_after": r["load_average_after"], "results": r["results"]}
               for r in runs]
json.dump(out, open(sys.argv[3], "w"), indent=1)
open(sys.argv[3], "a").write("\n")
print("wrote", sys.argv[3])
PY
