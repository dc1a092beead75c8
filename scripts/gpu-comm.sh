#!/usr/bin/env bash
# On a GPU machine (from the repository root): build dsabi with CUDA + NCCL + Gloo, run the
# multi-rank tests on CUDA tensors over NCCL (and over Gloo with staging), then the NCCL benchmark:
# ds_comm beside NCCL called directly (and torch.distributed's NCCL when torch is importable).
# Everything it produces goes to $OUT (default ./gpu-comm-out): logs, JSON, a summary.
#
#   ../shared/tools/device-deps.sh      # here, once: the Debian packages the GPU machine lacks (.deps)
#   scripts/gpu-comm.sh                 # there, with .deps carried along
#
# Environment: OUT, BUILD (default /tmp/build-gpu-comm), MAX_BYTES (default 1 GiB), DTYPE (bf16),
# JOBS (default nproc), NRANKS (list of world sizes; default "2 <all GPUs>").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-comm-out}
BUILD=${BUILD:-/tmp/build-gpu-comm}
MAX_BYTES=${MAX_BYTES:-1073741824}
DTYPE=${DTYPE:-bf16}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
if [ -f .deps/activate ]; then
  # shellcheck disable=SC1091
  source .deps/activate
else
  say "note: no .deps/activate (run ../shared/tools/device-deps.sh on the dev machine and carry .deps)"
fi
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

say "== machine"
nvidia-smi -L 2>&1 | tee "$OUT/gpus.txt" | tee -a "$summary"
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "$ngpu" -ge 1 ] || { say "no GPU visible: nothing to do"; exit 1; }

say "== build ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSABI_WITH_CUDA=ON -DDSABI_WITH_NCCL=ON \
  -DDSABI_WITH_GLOO=ON -DDSABI_WITH_PYTHON=OFF -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF -DDSABI_WERROR=OFF \
  > "$OUT/configure.log" 2>&1 || { say "configure failed (see configure.log)"; tail -30 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target dsabi dsabi_cuda dsrun dist_comm comm_bench nccl_bench test_comm \
  > "$OUT/build.log" 2>&1 || { say "build failed (see build.log)"; tail -40 "$OUT/build.log"; exit 1; }
dsrun=$BUILD/bin/dsrun
dist=$BUILD/bin/dist_comm
nccl_bench=$BUILD/bench/comm/nccl_bench
[ -x "$nccl_bench" ] || nccl_bench=$BUILD/bin/nccl_bench
"$BUILD/bin/test_comm" > "$OUT/test_comm.log" 2>&1; say "test_comm (single process): $(tail -1 "$OUT/test_comm.log")"

ranks=${NRANKS:-"2 $ngpu"}
[ "$ngpu" -lt 2 ] && ranks=1
ranks=$(echo $ranks | tr ' ' '\n' | awk -v m="$ngpu" '$1 <= m' | sort -un | tr '\n' ' ')

pass=0; fail=0; skip=0
run_test() {  # run_test NAME EXPECTED_STATUS cmd...
  local name=$1 expect=$2; shift 2
  local start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1
  local code=$?
  local took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  if [ $code -eq 77 ]; then skip=$((skip + 1)); say "SKIP $name ($took s)";
  elif [ $code -eq "$expect" ]; then pass=$((pass + 1)); say "PASS $name ($took s)";
  else fail=$((fail + 1)); say "FAIL $name: status $code, expected $expect ($took s); tail of $name.log:"; tail -15 "$OUT/$name.log" | tee -a "$summary"; fi
}

say "== NCCL tests (CUDA tensors), world sizes: $ranks"
for n in $ranks; do
  [ "$n" -ge 2 ] || continue
  for mode in collectives p2p async split; do
    run_test "nccl_${mode}_$n" 0 "$dsrun" -n "$n" --master-port 0 "$dist" "$mode" --device cuda
  done
  # Agreement checks over NCCL (off by default there): on, and every rank must see the mismatch.
  run_test "nccl_collectives_checked_$n" 0 env DSABI_COMM_CHECK=1 "$dsrun" -n "$n" --master-port 0 "$dist" collectives --device cuda
  # CUDA tensors through Gloo (staged through host memory).
  run_test "gloo_staged_collectives_$n" 0 env DIST_BACKEND=gloo "$dsrun" -n "$n" --master-port 0 "$dist" collectives --device cuda
done
n2=$(echo $ranks | awk '{print $1}')
if [ "$ngpu" -ge 2 ]; then
  # A rank killed mid-collective: the survivors get PEER or TIMEOUT within the timeout.
  run_test nccl_failure_kill 137 env DIST_TIMEOUT_MS=8000 "$dsrun" -n 2 --master-port 0 --failure-grace 15 --kill-timeout 3 "$dist" failure 1 kill --device cuda
  run_test nccl_abort 0 env DIST_TIMEOUT_MS=10000 "$dsrun" -n 2 --master-port 0 "$dist" abort --device cuda
fi
say "tests: $pass passed, $fail failed, $skip skipped"

say "== benchmark: ds_comm vs NCCL direct ($DTYPE, up to $MAX_BYTES bytes)"
have_torch=0
python3 -c 'import torch, torch.distributed as d; assert torch.cuda.is_available() and d.is_nccl_available()' 2>/dev/null && have_torch=1
for n in $ranks; do
  [ "$n" -ge 2 ] || continue
  "$dsrun" -n "$n" --master-port 0 --no-prefix "$nccl_bench" --dtype "$DTYPE" --max-bytes "$MAX_BYTES" \
    --json "$OUT/nccl-bench-n$n.json" 2>&1 | tee "$OUT/nccl-bench-n$n.log" | grep -v '^\[' | tee -a "$summary"
  if [ $have_torch = 1 ]; then
    "$dsrun" -n "$n" --master-port 0 --no-prefix python3 bench/comm/torch_nccl.py --dtype "$DTYPE" --max-bytes "$MAX_BYTES" \
      --json "$OUT/torch-nccl-n$n.json" 2>&1 | tee "$OUT/torch-nccl-n$n.log" | tee -a "$summary"
  else
    say "torch with CUDA + NCCL is not importable: no torch column"
  fi
done
# Verdict against the goals: >= 0.95x NCCL's bus bandwidth at >= 64 MiB, small-message latency within 10%.
python3 - "$OUT" <<'PY' | tee -a "$summary"
import glob, json, os, sys
out = sys.argv[1]
for f in sorted(glob.glob(os.path.join(out, "nccl-bench-n*.json"))):
    d = json.load(open(f))
    big = [r for r in d["rows"] if r["bytes"] >= 64 << 20]
    small = [r for r in d["rows"] if r["bytes"] <= 64 << 10]
    worst_big = min(big, key=lambda r: r["ratio_ds_over_nccl"]) if big else None
    worst_small = max(small, key=lambda r: r["ds_sync_us"] / r["nccl_sync_us"]) if small else None
    print(f"{os.path.basename(f)}: {d['world_size']} x {d['gpu']}, NCCL {d['nccl_version']}")
    if worst_big:
        print(f"  >= 64 MiB: worst ds/nccl bandwidth {worst_big['ratio_ds_over_nccl']:.3f} ({worst_big['op']} {worst_big['bytes']:.0f} B) "
              f"-> {'OK' if worst_big['ratio_ds_over_nccl'] >= 0.95 else 'BELOW 0.95'}")
    if worst_small:
        x = worst_small["ds_sync_us"] / worst_small["nccl_sync_us"]
        print(f"  <= 64 KiB: worst ds/nccl latency {x:.3f} ({worst_small['op']} {worst_small['bytes']:.0f} B: "
              f"{worst_small['ds_sync_us']:.1f} vs {worst_small['nccl_sync_us']:.1f} us) -> {'OK' if x <= 1.10 else 'ABOVE 1.10'}")
PY
say "results in $OUT"
[ $fail -eq 0 ]
