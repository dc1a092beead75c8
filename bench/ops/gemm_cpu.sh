#!/usr/bin/env bash
# CPU GEMM: ds_op_gemm / ds_op_gemm_wq (bench/ops/gemm_bench.c) beside Debian's torch (torch.mm:
# its own CPU BLAS path) on the same cases, alternating round by round (best of ROUNDS: the machine is
# shared). Both use every core (ds_op_get_num_threads / torch.set_num_threads). Writes
# bench/results/2026-11-21-gemm-cpu.json (or OUT).
#
#   bench/ops/gemm_cpu.sh [BUILD_DIR] [ROUNDS]   (defaults: build-gemm, 2; MIN_TIME=0.5 THREADS=nproc OUT=...)
#   RUNS_DIR=dir keeps the per-round JSON files there and merges every round found in it (several
#   invocations add up: more chances to catch the shared machine quiet).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build-gemm}" && pwd)
rounds=${2:-2}
min_time=${MIN_TIME:-0.5}
out=${OUT:-$root/bench/results/2026-11-21-gemm-cpu.json}
py=/usr/bin/python3
mkdir -p "$build/bench/ops"
bench=$build/bench/ops/gemm_bench
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$here/gemm_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -pthread -o "$bench"
if [ -n "${RUNS_DIR:-}" ]; then mkdir -p "$RUNS_DIR"; tmp=$(cd "$RUNS_DIR" && pwd); else tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi
"$bench" --device cpu --print-cases > "$tmp/cases.txt"
stamp=$(date +%s)
threads=${THREADS:-$(nproc)}
have_torch=0
$py -c 'import torch' 2>/dev/null && have_torch=1 || echo "gemm_cpu.sh: $py cannot import torch: the torch column is skipped"
for r in $(seq "$rounds"); do
  echo "== round $r: dsabi"
  "$bench" --device cpu --cases "$tmp/cases.txt" --min-time "$min_time" --threads "$threads" --json "$tmp/ds.$stamp.$r.json"
  if [ $have_torch = 1 ]; then
    echo "== round $r: torch"
    $py "$here/gemm_torch.py" time --device cpu --cases "$tmp/cases.txt" --min-time "$min_time" --threads "$threads" \
      --json "$tmp/torch.$stamp.$r.json"
  fi
done
torch_files=$(ls "$tmp"/torch.*.json 2>/dev/null || true)
$py "$here/gemm_torch.py" merge --device cpu --ds "$tmp"/ds.*.json --torch $torch_files --out "$out"
