#!/usr/bin/env bash
# Install what is missing, build, and run every test suite:
#   1. the full build: C ABI, C++ internals, ABI gates, install-tree consumers, Python, Java, Go
#      (and the CUDA backend's compile when a CUDA toolkit is present);
#   2. the C/C++ suites again under AddressSanitizer + UndefinedBehaviorSanitizer (CPU-only build);
#   3. the config fuzzer (libFuzzer, clang) for a bounded time on the seed corpus.
# Ends with one line "dsabi: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh || exit 1

passed=0; failed=0; skipped=0
run_ctest() {  # run_ctest BUILD_DIR [ctest args...]
  local dir=$1; shift
  local log; log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)" "$@") 2>&1 | tee "$log"
  local line; line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "test.sh: no ctest summary from $dir"; failed=$((failed + 1))
  else
    local f t s
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
    # ctest counts skipped tests (e.g. the NCCL suites without a GPU) among the passed ones.
    s=$(grep -c -E '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log")
    passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
  fi
  rm -f "$log"
}

section() { printf '\n==== %s ====\n' "$*"; }

section "build (full)"
if BUILD_DIR=build scripts/build.sh; then
  section "tests (full build)"
  run_ctest build
else
  echo "test.sh: the full build failed"; failed=$((failed + 1))
fi

section "build (AddressSanitizer + UBSan, CPU only)"
if BUILD_DIR=build-asan scripts/build.sh -DDSABI_SANITIZE=ON -DDSABI_WITH_CUDA=OFF -DDSABI_WITH_PYTHON=OFF \
     -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF -DCMAKE_BUILD_TYPE=Debug; then
  section "tests (sanitizers)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -L '^(c|cpp|dist)$'
else
  echo "test.sh: the sanitizer build failed"; failed=$((failed + 1))
fi

section "build (libFuzzer, clang)"
if CC=clang CXX=clang++ BUILD_DIR=build-fuzz BUILD_TARGET=fuzz_config scripts/build.sh -DDSABI_FUZZ=ON -DDSABI_WITH_CUDA=OFF -DDSABI_WITH_GLOO=OFF -DDSABI_WITH_AIO=OFF \
     -DDSABI_WITH_PYTHON=OFF -DDSABI_WITH_JAVA=OFF -DDSABI_WITH_GO=OFF -DDSABI_WERROR=OFF; then
  section "config fuzzer (bounded)"
  run_ctest build-fuzz -L '^fuzz$'
else
  echo "test.sh: the fuzzer build failed"; failed=$((failed + 1))
fi

echo
echo "test.sh: finished in $(( $(date +%s) - start )) s"
echo "dsabi: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
