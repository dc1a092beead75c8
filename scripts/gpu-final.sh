#!/usr/bin/env bash
# On the GPU machine (source .deps/activate first): build everything for Hopper into $BUILD, run the
# C / C++ / ABI suites (their CUDA paths run there), then the GPU scripts of the op families named in
# $FAMILIES (bench/ops/gpu_<family>.sh: tests + benchmarks beside PyTorch). Logs in $OUT.
#   BUILD=/tmp/b OUT=/tmp/o FAMILIES="optim nn" scripts/gpu-final.sh
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-/tmp/dsabi-gpu-build}
out=${OUT:-/tmp/dsabi-out}
mkdir -p "$out"
start=$(date +%s)
t() { echo "[$(( $(date +%s) - start )) s] $*"; }
if [ ! -x "$build/lib/libdsabi_cuda.so" ] || [ -n "${REBUILD:-}" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DDSABI_WITH_CUDA=ON -DDSABI_WERROR=OFF -DDSABI_WITH_PYTHON=OFF -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF \
    > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
  t "build OK, compiler warnings: $(grep -c 'warning:' "$out/build.log")"
  if [ -z "${SKIP_CTEST:-}" ]; then
    (cd "$build" && DSABI_TORCH_PYTHON=$(command -v python3) ctest -L '^(c|cpp|abi)$' -j 8 --output-on-failure) > "$out/ctest.log" 2>&1
    t "ctest: $(grep -E 'tests passed|tests failed' "$out/ctest.log")"
    grep -E "\*\*\*Failed|Failed  " "$out/ctest.log" | head
  fi
fi
status=0
for fam in ${FAMILIES:-optim nn gemm attn}; do
  t "== bench/ops/gpu_$fam.sh"
  timeout "${FAMILY_TIMEOUT:-240}" bash "bench/ops/gpu_$fam.sh" "$build" "$out" > "$out/gpu_$fam.log" 2>&1 || { t "gpu_$fam.sh FAILED"; status=1; }
  grep -vE "^\s*$" "$out/gpu_$fam.log" | tail -${TAIL:-25}
done
t "done"
exit $status
