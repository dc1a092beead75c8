#!/usr/bin/env bash
# GPU part of the optim family, run on the GPU machine (scripts/gpu-ops.sh calls it):
#   1. tests/c/test_op_optim (its CUDA part runs when a GPU is present), log in OUT_DIR; then
#      tests/gpu/optim_parity_cuda.py: ds_op_optim_step on CUDA against torch.optim on CUDA;
#   2. AdamW over 1e9 f32 params: ds_op_optim_step (bench/ops/optim_bench.c, --device cuda) beside
#      torch.optim.AdamW(fused=True) (bench/ops/optim_torch.py), one tensor and 1000 tensors; the
#      bf16-grads + bf16-copy variant and check_finite=1 of dsabi; a device copy bandwidth (torch);
#   3. writes bench/results/2026-11-21-optim-gpu-<h100|h200>.json (and a copy in OUT_DIR);
#   4. the CPU benchmark (optim_cpu.sh) on the host's cores, 1 and 16 threads:
#      bench/results/2026-11-21-optim-cpu-gpuhost.json.
#
#   bench/ops/gpu_optim.sh BUILD_DIR OUT_DIR          (N=1e9 ITERS=10 in the environment)
#
# An AdamW step moves 28 bytes per parameter (f32: read p, g, m, v; write p, m, v; bf16 grads + bf16
# copy: 4+2+4+4 read, 4+4+4+2 written): the floor is 28 B x N / bandwidth, given for the nominal
# 3.0 TB/s and for the measured copy bandwidth.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: gpu_optim.sh BUILD_DIR OUT_DIR}" && pwd)
out=${2:?usage: gpu_optim.sh BUILD_DIR OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
n=${N:-1e9}
iters=${ITERS:-10}
py=${PYTHON:-python3}
status=0

echo "== test_op_optim"
if [ -x "$build/bin/test_op_optim" ]; then
  "$build/bin/test_op_optim" > "$out/test_op_optim.log" 2>&1 || { echo "test_op_optim FAILED"; status=1; }
  grep -E "seed|CUDA|passed|failed|FAILED" "$out/test_op_optim.log" | tail -8
else
  echo "no $build/bin/test_op_optim (build the test_op_optim target)"; status=1
fi

echo "== torch.optim parity on CUDA (tests/gpu/optim_parity_cuda.py)"
"$py" "$root/tests/gpu/optim_parity_cuda.py" "$build/lib/libdsabi.so" > "$out/optim_parity_cuda.log" 2>&1 \
  || { echo "optim_parity_cuda FAILED"; status=1; }
grep -E "torch|parity|FAIL" "$out/optim_parity_cuda.log" | tail -12

echo "== build optim_bench"
bench=$build/bench/ops/optim_bench
mkdir -p "$build/bench/ops"
cc -O3 -fopenmp -std=c11 -Wall -Wextra -I"$root/include" "$here/optim_bench.c" -L"$build/lib" \
   -Wl,-rpath,"$build/lib" -ldsabi -o "$bench" || { echo "cannot build optim_bench"; exit 1; }

run() {  # name, command...
  local name=$1; shift
  echo "== $name"
  "$@" > "$out/$name.log" 2>&1 || { echo "$name FAILED (see $out/$name.log)"; status=1; }
  cat "$out/$name.log"
}
run ds_f32 "$bench" --device cuda --n "$n" --iters "$iters" --stream 0 --label f32 --json "$out/ds_f32.json"
run ds_f32_1000t "$bench" --device cuda --n "$n" --tensors 1000 --iters "$iters" --stream 0 --label f32_1000t --json "$out/ds_f32_1000t.json"
run ds_bf16 "$bench" --device cuda --n "$n" --grad bf16 --lp bf16 --iters "$iters" --stream 0 --label bf16 --json "$out/ds_bf16.json"
run ds_f32_checkfinite "$bench" --device cuda --n "$n" --check-finite 1 --iters "$iters" --stream 0 --label f32_check_finite --json "$out/ds_f32_cf.json"
run ds_lamb_100t "$bench" --device cuda --n "$n" --tensors 100 --kind lamb --iters "$iters" --stream 0 --label lamb_100t --json "$out/ds_lamb.json"
run torch_fused "$py" "$here/optim_torch.py" --device cuda --n "$n" --impl fused --iters "$iters" --copy-bw 1 --json "$out/torch_fused.json"
run torch_fused_1000t "$py" "$here/optim_torch.py" --device cuda --n "$n" --tensors 1000 --impl fused --iters "$iters" --json "$out/torch_fused_1000t.json"
# torch once more at the end, so that a change of the GPU's state shows as a difference of its two runs.
run torch_fused_again "$py" "$here/optim_torch.py" --device cuda --n "$n" --impl fused --iters "$iters" --json "$out/torch_fused_again.json"
run torch_foreach "$py" "$here/optim_torch.py" --device cuda --n "$n" --impl foreach --iters "$iters" --json "$out/torch_foreach.json"

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$gpu" in *H200*) tag=h200 ;; *) tag=h100 ;; esac
result="$root/bench/results/2026-11-21-optim-gpu-$tag.json"
mkdir -p "$root/bench/results"
"$py" - "$out" "$result" "$gpu" <<'PY' || status=1
import datetime, json, os, sys
d, result, gpu = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None
def best(doc):
    if not doc:
        return None
    rows = [r for r in doc["rows"] if "best_s" in r]
    return min(r["best_s"] for r in rows) if rows else None
ds = {k: load(f) for k, f in [("f32", "ds_f32.json"), ("f32_1000t", "ds_f32_1000t.json"), ("bf16", "ds_bf16.json"),
                              ("f32_check_finite", "ds_f32_cf.json"), ("lamb_100t", "ds_lamb.json")]}
th = {k: load(f) for k, f in [("fused", "torch_fused.json"), ("fused_1000t", "torch_fused_1000t.json"), ("foreach", "torch_foreach.json")]}
n = next((x["n"] for x in ds.values() if x), 0)
copy_bw = (th["fused"] or {}).get("copy_GBps")
nominal = 3000.0
rows = []
print()
print(f"AdamW step, {n:.0e} params on {gpu}; floor = bytes x N / bandwidth (nominal {nominal/1000:.1f} TB/s"
      + (f", measured copy {copy_bw/1000:.2f} TB/s)" if copy_bw else ")"))
print(f"{'case':<22} {'dsabi_ms':>9} {'TB/s':>6} {'torch_ms':>9} {'dsabi/torch':>11} {'floor_ms':>9} {'x_floor':>8}")
pairs = [("f32", "fused"), ("f32_1000t", "fused_1000t"), ("bf16", None), ("f32_check_finite", "fused"), ("lamb_100t", None)]
for k, tk in pairs:
    doc = ds[k]
    b = best(doc)
    if b is None:
        print(f"{k:<22} missing")
        continue
    bytes_ = doc["bytes_per_param"] * n
    floor_nominal = bytes_ / (nominal * 1e9)
    row = {"case": k, "kind": doc["kind"], "tensors": doc["tensors"], "grad_dtype": doc["grad_dtype"], "lp_dtype": doc["lp_dtype"],
           "check_finite": doc["check_finite"], "bytes_per_param": doc["bytes_per_param"], "dsabi_best_s": b,
           "dsabi_TBps": bytes_ / b * 1e-12, "floor_nominal_s": floor_nominal, "dsabi_over_floor_nominal": b / floor_nominal}
    if copy_bw:
        row["floor_copy_bw_s"] = bytes_ / (copy_bw * 1e9)
    tb = best(th.get(tk)) if tk else None
    if tb:
        row["torch_" + tk + "_best_s"] = tb
        row["dsabi_over_torch"] = b / tb
    rows.append(row)
    print(f"{k:<22} {b*1e3:>9.3f} {row['dsabi_TBps']:>6.2f} {(tb*1e3 if tb else float('nan')):>9.3f} "
          f"{(b/tb if tb else float('nan')):>11.3f} {floor_nominal*1e3:>9.3f} {b/floor_nominal:>8.3f}")
for tk in ("fused", "fused_1000t", "foreach"):
    tb = best(th.get(tk))
    if tb:
        print(f"torch {tk:<16} {tb*1e3:>9.3f} ms")
doc = {"what": "CUDA AdamW step over 1e9 params: dsabi ds_op_optim_step vs torch.optim.AdamW(fused=True); floor = bytes / bandwidth",
       "date": datetime.date.today().isoformat(), "gpu": gpu, "n": n, "nominal_bandwidth_GBps": nominal,
       "copy_bandwidth_GBps": copy_bw,
       "method": "per-step time = wall time of `iters` asynchronous steps + one synchronize, best of 3 batches, after 1 warm-up step",
       "torch": {k: dict({kk: vv for kk, vv in v.items() if kk != 'rows'}, best_s=best(v)) if v else None for k, v in th.items()},
       "rows": rows,
       "goal": "f32 single tensor: dsabi <= 0.90 x torch fused"}
json.dump(doc, open(result, "w"), indent=1)
json.dump(doc, open(os.path.join(d, os.path.basename(result)), "w"), indent=1)
print(f"wrote {result}")
PY

# CPU AdamW on the GPU host's cores (1 and 16 threads) beside torch foreach, after the GPU figures.
echo "== CPU AdamW on the GPU host"
PYTHON="$py" THREADS=${CPU_THREADS:-1,16} ROUNDS=1 ITERS=5 bash "$here/optim_cpu.sh" "$build" \
  "$root/bench/results/2026-11-21-optim-cpu-gpuhost.json" > "$out/optim_cpu_gpuhost.log" 2>&1 \
  || { echo "optim_cpu.sh FAILED (see $out/optim_cpu_gpuhost.log)"; status=1; }
tail -15 "$out/optim_cpu_gpuhost.log"
cp "$root/bench/results/2026-11-21-optim-cpu-gpuhost.json" "$out/" 2>/dev/null || true
exit $status
