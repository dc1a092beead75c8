#!/usr/bin/env bash
# GPU part of the attn family, run on the GPU machine (scripts/gpu-ops.sh calls it):
#   1. tests/c/test_op_attn (its CUDA part runs when a GPU is present: forward and backward against a
#      float64 reference, bf16 / f16, D 64 / 128, S 1 .. 1024, causal, GQA, outputs poisoned with NaN),
#      log in OUT_DIR;
#   2. bench/ops/attn_bench.c --device cuda beside bench/ops/attn_torch.py
#      (torch.nn.functional.scaled_dot_product_attention) on the same cases, alternating, ROUNDS rounds
#      (best of): B8 H16 S2048 D128 causal / non-causal, D64, f16, S8192, GQA 32/8, B16 S512;
#   3. writes bench/results/2026-11-21-attn-gpu-<h100|h200>.json (and a copy in OUT_DIR);
#   4. the forward variant DSABI_ATTN_FWD_MT=1 (8 warps x 16 rows instead of 4 x 32): the test once more
#      and dsabi alone on three cases (OUT_DIR/attn-variant-mt1.json), to choose the default.
#
#   bench/ops/gpu_attn.sh BUILD_DIR OUT_DIR          (ROUNDS=2 MIN_TIME=0.5 in the environment)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: gpu_attn.sh BUILD_DIR OUT_DIR}" && pwd)
out=${2:?usage: gpu_attn.sh BUILD_DIR OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rounds=${ROUNDS:-2}
min_time=${MIN_TIME:-0.5}
py=${PYTHON:-python3}
status=0

echo "== test_op_attn"
if [ -x "$build/bin/test_op_attn" ]; then
  "$build/bin/test_op_attn" > "$out/test_op_attn.log" 2>&1 || { echo "test_op_attn FAILED"; status=1; }
  grep -E "seed|cpu isa|cuda|CUDA|passed|failed|FAILED|error" "$out/test_op_attn.log" | tail -40
else
  echo "no $build/bin/test_op_attn (build the test_op_attn target)"; status=1
fi

echo "== test_op_attn with the forward variant DSABI_ATTN_FWD_MT=1 (8 warps x 16 query rows)"
if [ -x "$build/bin/test_op_attn" ]; then
  DSABI_ATTN_FWD_MT=1 "$build/bin/test_op_attn" > "$out/test_op_attn_mt1.log" 2>&1 || { echo "test_op_attn (MT=1) FAILED"; status=1; }
  grep -E "cuda|CUDA|passed|failed|FAILED" "$out/test_op_attn_mt1.log" | tail -10
fi

echo "== build attn_bench"
bench=$build/bench/ops/attn_bench
mkdir -p "$build/bench/ops"
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$here/attn_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench" || { echo "cannot build attn_bench"; exit 1; }

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H200*) tag=h200 ;; *) tag=h100 ;; esac
result="$root/bench/results/2026-11-21-attn-gpu-$tag.json"
mkdir -p "$root/bench/results"
echo "== bench on $gpu ($rounds rounds)"
"$py" "$here/attn_torch.py" run --device cuda --bench "$bench" --out "$result" --rounds "$rounds" \
  --min-time "$min_time" 2>&1 | tee "$out/attn_bench.log" || status=1
cp "$result" "$out/" 2>/dev/null || true

echo "== forward variant DSABI_ATTN_FWD_MT=1 (8 warps x 16 query rows), dsabi only"
printf '%s\n' "b8h16s2048d128_causal bf16 8 16 16 2048 2048 128 1" "b8h16s2048d128 bf16 8 16 16 2048 2048 128 0" \
  "b8h16s2048d64_causal bf16 8 16 16 2048 2048 64 1" > "$out/variant_cases.txt"
DSABI_ATTN_FWD_MT=1 "$bench" --device cuda --cases "$out/variant_cases.txt" --min-time "$min_time" \
  --json "$out/attn-variant-mt1.json" 2>&1 | tee "$out/attn_variant_mt1.log" || status=1
exit $status
