#!/usr/bin/env bash
# Run on the GPU machine (see ../shared/research/build-environment.md, "GPU machine"): build dsabi
# with the CUDA backend for Hopper, run the C / C++ suites (their CUDA paths run there), then any
# GPU scripts given as arguments (e.g. scripts/gpu-comm.sh). Logs go to $OUT (or /tmp/dsabi-out).
#   source .deps/activate && scripts/gpu-check.sh [more scripts...]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/dsabi-out}
mkdir -p "$out"
build=${GPU_BUILD_DIR:-/tmp/dsabi-gpu-build}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DDSABI_WITH_CUDA=ON -DDSABI_WERROR=OFF -DDSABI_WITH_PYTHON=OFF -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "dsabi 0" "$out/configure.log"
cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
echo "build OK, compiler warnings: $(grep -c 'warning:' "$out/build.log")"
"$build/bin/test_tensor" 2>&1 | tee "$out/test_tensor.log" | grep -E "cuda|CUDA|passed"
(cd "$build" && DSABI_TORCH_PYTHON=$(command -v python3) ctest -L '^(c|cpp|abi)$' -j 8 --output-on-failure) > "$out/ctest.log" 2>&1
grep -E "tests passed|tests failed|\*\*\*Failed|Failed  " "$out/ctest.log"
status=0
for script in "$@"; do
  echo "== $script"
  BUILD=$build OUT=$out bash "$script" || status=1
done
exit $status
