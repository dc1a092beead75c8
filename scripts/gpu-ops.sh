#!/usr/bin/env bash
# Run on the GPU machine after scripts/gpu-check.sh has built into $BUILD (it passes BUILD and OUT):
# the op-layer tests on CUDA, compute-sanitizer once over them, then each family's GPU benchmark
# script bench/ops/gpu_<family>.sh BUILD_DIR OUT_DIR. Logs and JSON go to $OUT.
#   source .deps/activate && scripts/gpu-check.sh scripts/gpu-ops.sh
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:?BUILD (the build directory) is required}
out=${OUT:-/tmp/dsabi-out}
mkdir -p "$out"
status=0
families=${DSABI_GPU_FAMILIES:-optim nn gemm attn}
for fam in $families; do
  for t in "$build"/bin/test_op_"$fam"*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    "$t" > "$out/$name.log" 2>&1 || { echo "$name FAILED"; status=1; }
    grep -E "passed|failed|CUDA|cuda" "$out/$name.log" | tail -5
  done
done
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "${sanitizer:-}" ] && [ -z "${DSABI_SKIP_SANITIZER:-}" ]; then
  for fam in $families; do
    t="$build/bin/test_op_$fam"
    [ -x "$t" ] || continue
    echo "== compute-sanitizer memcheck $(basename "$t")"
    timeout 300 "$sanitizer" --tool memcheck --error-exitcode 9 "$t" \
      > "$out/sanitizer_$fam.log" 2>&1
    rc=$?
    tail -3 "$out/sanitizer_$fam.log"
    [ $rc -eq 0 ] || { echo "sanitizer rc=$rc for $fam"; status=1; }
  done
fi
for fam in $families; do
  script=bench/ops/gpu_$fam.sh
  [ -f "$script" ] || continue
  echo "== $script"
  timeout 400 bash "$script" "$build" "$out" || { echo "$script FAILED"; status=1; }
done
exit $status
