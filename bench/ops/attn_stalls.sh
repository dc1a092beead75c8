#!/usr/bin/env bash
# Where the attention kernels stall, on the GPU machine: Nsight Compute's speed-of-light, compute and memory
# workload, warp state and per-instruction stall sampling for one launch each of the forward and backward
# main kernels on one case (clocks and caches left alone). Writes OUT_DIR/stalls_<fwd|bwd>.txt (sections)
# and OUT_DIR/stalls_<fwd|bwd>_sass.csv (per SASS instruction: samples by stall reason).
#   bench/ops/attn_stalls.sh BUILD_DIR OUT_DIR [CASE]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: attn_stalls.sh BUILD_DIR OUT_DIR [CASE]}" && pwd)
out=${2:?usage}
mkdir -p "$out"
echo "${3:-b8h16s2048d128_causal bf16 8 16 16 2048 2048 128 1}" > "$out/stalls_case.txt"
bench=$build/bench/ops/attn_bench
[ -x "$bench" ] || cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -I"$root/include" "$here/attn_bench.c" -L"$build/lib" \
  -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench" || { echo "cannot build attn_bench"; exit 1; }
for k in ${KERNELS:-fwd bwd}; do
  case $k in fwd) re='attn_fwd_sm90' ;; bwd) re='attn_bwd_sm90' ;; esac
  timeout 300 ncu --clock-control none --cache-control none -k "regex:$re" --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section WarpStateStats --section SchedulerStats --section SourceCounters --section LaunchStats \
    --section Occupancy -o "$out/stalls_$k" -f "$bench" --device cuda --cases "$out/stalls_case.txt" --min-time 0.01 \
    > "$out/stalls_${k}_run.log" 2>&1 || { echo "ncu $k failed"; tail -5 "$out/stalls_${k}_run.log"; }
  ncu -i "$out/stalls_$k.ncu-rep" --page details > "$out/stalls_$k.txt" 2>&1
  ncu -i "$out/stalls_$k.ncu-rep" --page source --csv --print-source sass > "$out/stalls_${k}_sass.csv" 2>&1
  grep -E "Duration|Throughput|Stall|Warp Cycles|Issued|Eligible|Active Warps|Registers|Pipe|Bank" "$out/stalls_$k.txt" | head -40
done
