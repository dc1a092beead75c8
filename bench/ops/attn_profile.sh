#!/usr/bin/env bash
# Kernel-level breakdown of one attention case on the GPU machine: every kernel dsabi's
# ds_op_attention / ds_op_attention_backward launches, and every kernel torch's
# scaled_dot_product_attention launches, each with its duration, DRAM and L2 bytes (Nsight Compute,
# clocks and caches left alone). Tells where the time of a forward + backward goes, beside the peer.
#   bench/ops/attn_profile.sh BUILD_DIR OUT_DIR [CASE]     CASE: "name dtype B Hq Hkv S Skv D causal"
#                                                          (default b8h16s2048d128_causal bf16 ...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: attn_profile.sh BUILD_DIR OUT_DIR [CASE]}" && pwd)
out=${2:?usage}
mkdir -p "$out"
case_line=${3:-"b8h16s2048d128_causal bf16 8 16 16 2048 2048 128 1"}
echo "$case_line" > "$out/profile_case.txt"
bench=$build/bench/ops/attn_bench
[ -x "$bench" ] || cc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -I"$root/include" "$here/attn_bench.c" -L"$build/lib" \
  -Wl,-rpath,"$build/lib" -ldsabi -lm -o "$bench" || { echo "cannot build attn_bench"; exit 1; }
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_elapsed,lts__throughput.avg.pct_of_peak_sustained_elapsed
ncu_run() {  # name, then the command
  local name=$1; shift
  timeout 300 ncu --clock-control none --cache-control none --metrics "$metrics" -k "regex:$KREGEX" \
    --launch-skip "${SKIP:-0}" --launch-count "${COUNT:-40}" --csv --page raw "$@" > "$out/ncu_$name.csv" 2> "$out/ncu_$name.err" ||
    { echo "ncu $name failed:"; tail -5 "$out/ncu_$name.err"; }
  python3 - "$out/ncu_$name.csv" "$name" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
hdr = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if hdr is None:
    print("no kernels in", sys.argv[1]); sys.exit(0)
h = rows[hdr]; data = rows[hdr + 2:]
col = {k: h.index(k) for k in h}
def f(r, k):
    try: return float(r[col[k]].replace(",", ""))
    except Exception: return float("nan")
print(f"== {sys.argv[2]}: kernel, time us, DRAM MB read/write, L2 MB, tensor pipe %, L2 %")
for r in data:
    t = f(r, "gpu__time_duration.sum")
    print(f"  {r[col['Kernel Name']][:70]:70s} {t/1e3:9.1f} {f(r,'dram__bytes_read.sum')/1e6:8.0f} {f(r,'dram__bytes_write.sum')/1e6:8.0f}"
          f" {f(r,'lts__t_bytes.sum')/1e6:8.0f} {f(r,'sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_elapsed'):6.1f}"
          f" {f(r,'lts__throughput.avg.pct_of_peak_sustained_elapsed'):6.1f}")
PY
}
KREGEX=attn ncu_run dsabi "$bench" --device cuda --cases "$out/profile_case.txt" --min-time 0.01
cat > "$out/profile_torch.py" <<'PY'
import sys, torch, torch.nn.functional as F
f = sys.argv[1].split()
B, Hq, Hkv, S, Skv, D, causal = (int(x) for x in f[2:9])
dt = torch.bfloat16 if f[1] == "bf16" else torch.float16
q = (torch.rand(B, S, Hq, D, device="cuda", dtype=dt) * 2 - 1).transpose(1, 2).requires_grad_()
k = (torch.rand(B, Skv, Hkv, D, device="cuda", dtype=dt) * 2 - 1).transpose(1, 2).requires_grad_()
v = (torch.rand(B, Skv, Hkv, D, device="cuda", dtype=dt) * 2 - 1).transpose(1, 2).requires_grad_()
do = torch.rand(B, Hq, S, D, device="cuda", dtype=dt) * 2 - 1
for _ in range(10):
    q.grad = k.grad = v.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal), enable_gqa=Hq != Hkv).backward(do)
torch.cuda.synchronize()
PY
KREGEX="cudnn|flash|fmha|attn|convert|dot_do" ncu_run torch python3 "$out/profile_torch.py" "$case_line"
