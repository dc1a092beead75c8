#!/usr/bin/env bash
# CPU attention: ds_op_attention / ds_op_attention_backward (bench/ops/attn_bench.c) beside Debian's
# torch (1.13 has no scaled_dot_product_attention: softmax(q k^T * scale + mask) v, autograd for the
# backward) on the same cases, alternating round by round (best of ROUNDS: the machine is shared).
# Both use every core. Writes bench/results/2026-11-21-attn-cpu.json (or OUT).
#
#   bench/ops/attn_cpu.sh [BUILD_DIR] [ROUNDS]        (defaults: build-attn, 2; MIN_TIME=0.5, OUT=...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build-attn}" && pwd)
rounds=${2:-2}
min_time=${MIN_TIME:-0.5}
out=${OUT:-$root/bench/results/2026-11-21-attn-cpu.json}
py=/usr/bin/python3
mkdir -p "$build/bench/ops"
bench=$build/bench/ops/attn_bench
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$here/attn_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench"
$py "$here/attn_torch.py" run --device cpu --bench "$bench" --out "$out" --rounds "$rounds" --min-time "$min_time" \
  --threads "$(nproc)"
