#!/usr/bin/env bash
# Build and run the data loader benchmark against a built libdsabi; writes
# bench/results/<yyyy-mm-dd>-data-loader.json.   usage: bench/data/run.sh [BUILD_DIR] [loader_bench args]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
shift || true
out="$build/bench/data"
mkdir -p "$out" "$root/bench/results"
cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$root/include" "$root/bench/data/loader_bench.c" \
   -L"$build/lib" -Wl,-rpath,"$build/lib" -ldsabi -o "$out/loader_bench"
"$out/loader_bench" --json "$root/bench/results/$(date -u +%Y-%m-%d)-data-loader.json" "$@"
