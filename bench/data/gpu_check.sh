#!/bin/bash
# GPU check of the data loader on a machine with CUDA (from the repo root): builds with the CUDA
# backend, runs the data tests (batches must be pinned) and the loader benchmark.
# On the device machine: carry .deps (../shared/tools/device-deps.sh) and run bash bench/data/gpu_check.sh

[ -f .deps/activate ] && source .deps/activate
OUT=${OUT:-/tmp/dsabi-gpu-check}; mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
cmake -S . -B /tmp/b -G Ninja -DDSABI_WITH_CUDA=ON -DDSABI_WITH_NCCL=OFF -DDSABI_WITH_PYTHON=OFF -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF -DDSABI_WERROR=OFF > $OUT/cmake.log 2>&1 || { tail -30 $OUT/cmake.log; exit 1; }
cmake --build /tmp/b -j16 --target dsabi dsabi_cuda test_data_loader test_data_format test_data_sampler test_data_curriculum test_data_large test_data_internals example_data_loader > $OUT/build.log 2>&1 || { grep -E "error|FAILED" $OUT/build.log | head -30; exit 1; }
nvidia-smi -L
cd /tmp/b && for t in test_data_format test_data_loader test_data_curriculum test_data_internals; do echo "== $t"; DSABI_LOG_LEVEL=info ./bin/$t 2>&1 | tail -4; done
cd - >/dev/null
bash bench/data/run.sh /tmp/b --seconds 3 2>&1 | tail -14
cp bench/results/*-data-loader.json $OUT/ 2>/dev/null
