#!/usr/bin/env bash
# GPU part of the gemm family, run on the GPU machine (scripts/gpu-ops.sh calls it):
#   1. tests/c/test_op_gemm (its CUDA part runs when a GPU is present: GEMM through cuBLASLt,
#      quantize / dequantize, gemm_wq, outputs poisoned first), log in OUT_DIR;
#   2. bench/ops/gemm_bench.c --device cuda beside bench/ops/gemm_torch.py (torch.mm, i.e. the cuBLAS
#      call of torch.matmul / F.linear) on the same shapes, alternating, ROUNDS rounds (best of):
#      bf16 8192^3 and 4096^3, GPT-2 (16384 x 3072 x 768, 16384 x 768 x 3072, 16384 x 2304 x 768) and
#      Llama-3-8B (8192 x 14336 x 4096, 8192 x 4096 x 14336, 8192 x 6144 x 4096) Linear shapes,
#      f16 and f32 4096^3; gemm_wq decode (M = 1, 16; N x K = 4096 x 4096, 14336 x 4096; int8 and int4)
#      beside torch's dense bf16 matmul and the floor quantized bytes / 3.0 TB/s;
#   3. writes bench/results/2026-11-21-gemm-gpu-<h100|h200>.json (and a copy in OUT_DIR).
#
#   bench/ops/gpu_gemm.sh BUILD_DIR OUT_DIR          (ROUNDS=2 MIN_TIME=0.5 in the environment)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: gpu_gemm.sh BUILD_DIR OUT_DIR}" && pwd)
out=${2:?usage: gpu_gemm.sh BUILD_DIR OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rounds=${ROUNDS:-2}
min_time=${MIN_TIME:-0.5}
py=${PYTHON:-python3}
status=0

echo "== test_op_gemm"
if [ -x "$build/bin/test_op_gemm" ]; then
  "$build/bin/test_op_gemm" > "$out/test_op_gemm.log" 2>&1 || { echo "test_op_gemm FAILED"; status=1; }
  grep -E "seed|cuda|CUDA|passed|failed|FAILED" "$out/test_op_gemm.log" | tail -30
else
  echo "no $build/bin/test_op_gemm (build the test_op_gemm target)"; status=1
fi

echo "== build gemm_bench"
bench=$build/bench/ops/gemm_bench
mkdir -p "$build/bench/ops"
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$here/gemm_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -pthread -o "$bench" || { echo "cannot build gemm_bench"; exit 1; }
"$bench" --device cuda --print-cases > "$out/cases.txt"

for r in $(seq "$rounds"); do
  echo "== round $r: dsabi"
  "$bench" --device cuda --cases "$out/cases.txt" --min-time "$min_time" --json "$out/ds.$r.json" \
    2>&1 | tee "$out/ds.$r.log" || status=1
  echo "== round $r: torch"
  "$py" "$here/gemm_torch.py" time --device cuda --cases "$out/cases.txt" --min-time "$min_time" \
    --json "$out/torch.$r.json" 2>&1 | tee "$out/torch.$r.log" || status=1
done

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H200*) tag=h200 ;; *) tag=h100 ;; esac
result="$root/bench/results/2026-11-21-gemm-gpu-$tag.json"
mkdir -p "$root/bench/results"
"$py" "$here/gemm_torch.py" merge --device cuda --ds "$out"/ds.*.json --torch "$out"/torch.*.json \
  --out "$result" 2>&1 | tee "$out/merge.log" || status=1
cp "$result" "$out/" 2>/dev/null || true
exit $status
