#!/usr/bin/env bash
# Install what is missing, build dsabi, and run its main job: validate and normalise DeepSpeed
# configs with ds-config. (Training arrives with the engine; until then the config is the job.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=build scripts/build.sh >/dev/null
bin=build/bin
echo
echo "== dsabi build"
"$bin/ds-config" --version
echo
echo "== ds-config check examples/configs/*.json --world-size 8"
"$bin/ds-config" check examples/configs/*.json --world-size 8
echo
cfg=examples/configs/zero2_cpu_offload.json
[ -f "$cfg" ] || cfg=$(ls examples/configs/*.json | head -n 1)
echo "== ds-config show $cfg --world-size 8   (every default filled in, batch sizes derived)"
"$bin/ds-config" show "$cfg" --world-size 8
echo
echo "== a broken config is rejected with the key path, the value and the allowed range"
broken=$(mktemp --suffix=.json)
trap 'rm -f "$broken"' EXIT
cat > "$broken" <<'JSON'
{
  // hjson-style comments are fine
  "train_batch_size": 32,
  "train_micro_batch_size_per_gpu": 4,
  "gradient_accumulation_steps": 2,
  "zero_optimization": {"stage": 4, "reduce_bucket_sise": 5e8},
  "fp16": {"enabled": true},
}
JSON
if "$bin/ds-config" check "$broken" --world-size 3; then
  echo "demo: expected the broken config to be rejected" >&2; exit 1
fi
echo
echo "demo: OK"
