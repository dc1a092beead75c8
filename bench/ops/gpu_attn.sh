#!/usr/bin/env bash
# GPU part of the attn family, run on the GPU machine (scripts/gpu-ops.sh calls it):
#   1. tests/c/test_op_attn (its CUDA part runs when a GPU is present: forward and backward against a
#      float64 reference, bf16 / f16, D 64 / 128, S 1 .. 1024, causal, GQA, outputs poisoned with NaN)
#      once per forward implementation: DSABI_ATTN_IMPL=sm90 (the Hopper wgmma kernel,
#      kernels/cuda/ops_attn_sm90.cuh; once more with a grid of 3 persistent CTAs, DSABI_ATTN_SM90_GRID=3,
#      so that each runs many work items) and DSABI_ATTN_IMPL=fa2 (the mma.sync kernel; once more with its
#      variant DSABI_ATTN_FWD_MT=1), and with each backward main kernel (DSABI_ATTN_BWD_IMPL=sm90, the Hopper
#      wgmma kernel of kernels/cuda/ops_attn_bwd_sm90.cuh, or fa2); logs in OUT_DIR;
#   2. bench/ops/attn_bench.c --device cuda beside bench/ops/attn_torch.py
#      (torch.nn.functional.scaled_dot_product_attention) on the same cases, alternating, ROUNDS rounds
#      (best of), with the default implementation: B8 H16 S2048 D128 causal / non-causal, D64, f16,
#      S8192, GQA 32/8, B16 S512;
#   3. writes bench/results/<today>-attn-gpu-<h100|h200>.json (and a copy in OUT_DIR);
#   4. dsabi alone with the other forward implementation on the same cases (OUT_DIR/attn-impl-<impl>.json),
#      with the other backward main kernel (OUT_DIR/attn-bwd-<impl>.json),
#      and the FA2 variant DSABI_ATTN_FWD_MT=1 (8 warps x 16 rows) on three cases (OUT_DIR/attn-variant-mt1.json).
#
#   bench/ops/gpu_attn.sh BUILD_DIR OUT_DIR          (ROUNDS=2 MIN_TIME=0.5 in the environment;
#                                                     ATTN_SKIP_TESTS=1 skips step 1)
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

# The forward used when DSABI_ATTN_IMPL is unset on compute capability 9.0 (kSm90FwdDefault in
# kernels/cuda/ops_attn.cu) and the other one.
default_impl=sm90
other_impl=fa2
# Likewise the backward main kernel (DSABI_ATTN_BWD_IMPL; kSm90BwdDefault).
default_bwd=sm90
other_bwd=fa2

# test_op_attn under the given environment settings; log OUT_DIR/test_op_attn_NAME.log.
run_test() {
  local name=$1
  shift
  echo "== test_op_attn with $*"
  if [ -x "$build/bin/test_op_attn" ]; then
    env "$@" timeout 600 "$build/bin/test_op_attn" > "$out/test_op_attn_$name.log" 2>&1 ||
      { echo "test_op_attn ($*) FAILED"; status=1; }
    grep -E "seed|cpu isa|cuda|CUDA|passed|failed|FAILED|error" "$out/test_op_attn_$name.log" | tail -40
  else
    echo "no $build/bin/test_op_attn (build the test_op_attn target)"; status=1
  fi
}
if [ -z "${ATTN_SKIP_TESTS:-}" ]; then
  run_test sm90 DSABI_ATTN_IMPL=sm90 DSABI_ATTN_BWD_IMPL=sm90
  # A grid of 3 CTAs: every CTA of the persistent sm90 kernel runs many work items.
  run_test sm90_grid3 DSABI_ATTN_IMPL=sm90 DSABI_ATTN_SM90_GRID=3 DSABI_ATTN_BWD_IMPL=sm90
  run_test sm90_bwd_fa2 DSABI_ATTN_IMPL=sm90 DSABI_ATTN_BWD_IMPL=fa2
  run_test fa2 DSABI_ATTN_IMPL=fa2 DSABI_ATTN_BWD_IMPL=fa2
  run_test fa2_bwd_sm90 DSABI_ATTN_IMPL=fa2 DSABI_ATTN_BWD_IMPL=sm90
  run_test fa2_mt1 DSABI_ATTN_IMPL=fa2 DSABI_ATTN_FWD_MT=1 DSABI_ATTN_BWD_IMPL=fa2
fi

echo "== build attn_bench"
bench=$build/bench/ops/attn_bench
mkdir -p "$build/bench/ops"
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$here/attn_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench" || { echo "cannot build attn_bench"; exit 1; }

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H200*) tag=h200 ;; *) tag=h100 ;; esac
result="$root/bench/results/$(date +%F)-attn-gpu-$tag.json"
mkdir -p "$root/bench/results"
echo "== bench on $gpu ($rounds rounds, forward implementation: $default_impl, backward: $default_bwd)"
"$py" "$here/attn_torch.py" run --device cuda --bench "$bench" --out "$result" --rounds "$rounds" \
  --min-time "$min_time" 2>&1 | tee "$out/attn_bench.log" || status=1
cp "$result" "$out/" 2>/dev/null || true

echo "== dsabi alone with DSABI_ATTN_IMPL=$other_impl"
DSABI_ATTN_IMPL=$other_impl "$bench" --device cuda --min-time "$min_time" --json "$out/attn-impl-$other_impl.json" 2>&1 |
  tee "$out/attn_impl_$other_impl.log" || status=1

echo "== dsabi alone with DSABI_ATTN_BWD_IMPL=$other_bwd"
DSABI_ATTN_BWD_IMPL=$other_bwd "$bench" --device cuda --min-time "$min_time" --json "$out/attn-bwd-$other_bwd.json" 2>&1 |
  tee "$out/attn_bwd_$other_bwd.log" || status=1

echo "== FA2 forward variant DSABI_ATTN_FWD_MT=1 (8 warps x 16 query rows), dsabi only"
printf '%s\n' "b8h16s2048d128_causal bf16 8 16 16 2048 2048 128 1" "b8h16s2048d128 bf16 8 16 16 2048 2048 128 0" \
  "b8h16s2048d64_causal bf16 8 16 16 2048 2048 64 1" > "$out/variant_cases.txt"
DSABI_ATTN_IMPL=fa2 DSABI_ATTN_FWD_MT=1 "$bench" --device cuda --cases "$out/variant_cases.txt" --min-time "$min_time" \
  --json "$out/attn-variant-mt1.json" 2>&1 | tee "$out/attn_variant_mt1.log" || status=1
exit $status
