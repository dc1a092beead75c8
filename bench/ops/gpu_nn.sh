#!/usr/bin/env bash
# GPU part of the nn family (transformer ops), run on the GPU machine (scripts/gpu-ops.sh calls it):
#   1. tests/c/test_op_nn (its CUDA part runs when a GPU is present), log in OUT_DIR;
#   2. bench/ops/nn_bench --device cuda (layer/RMS norm fwd+bwd and softmax fwd+bwd on bf16 [16384, 4096],
#      cross-entropy on bf16 [8192, 50304], f32 layer norm, GELU, SwiGLU, RoPE, embedding, dropout) beside
#      torch on the same shapes in the same run (bench/ops/nn_torch.py), and the device copy bandwidth;
#   3. writes bench/results/2026-11-21-nn-gpu-<h100|h200>.json (and a copy in OUT_DIR).
#
#   bench/ops/gpu_nn.sh BUILD_DIR OUT_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: gpu_nn.sh BUILD_DIR OUT_DIR}" && pwd)
out=${2:?usage: gpu_nn.sh BUILD_DIR OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
status=0

echo "== test_op_nn"
if [ -x "$build/bin/test_op_nn" ]; then
  "$build/bin/test_op_nn" > "$out/test_op_nn.log" 2>&1 || { echo "test_op_nn FAILED"; status=1; }
  grep -E "seed|CUDA|cuda|passed|failed|FAILED" "$out/test_op_nn.log" | tail -12
else
  echo "no $build/bin/test_op_nn (build the test_op_nn target)"; status=1
fi

echo "== build nn_bench"
bench=$build/bench/ops/nn_bench
mkdir -p "$build/bench/ops"
cc -O2 -std=c11 -Wall -Wextra -I"$root/include" "$here/nn_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench" || { echo "cannot build nn_bench"; exit 1; }

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H200*) tag=h200 ;; *) tag=h100 ;; esac
result="$root/bench/results/2026-11-21-nn-gpu-$tag.json"
mkdir -p "$root/bench/results"
echo "== nn_bench + torch on $gpu"
BENCH_DATE=2026-11-21 timeout 300 "$py" "$here/nn_torch.py" --bench "$bench" --device cuda --json "$result" \
  2>&1 | tee "$out/nn_bench_gpu.log" || status=1
[ -f "$result" ] && cp "$result" "$out/" || status=1
exit $status
