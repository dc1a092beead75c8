#!/usr/bin/env bash
# Configure and build dsabi into BUILD_DIR (default: build). Extra arguments go to CMake.
# Debian's numpy and pytest serve /usr/bin/python3, so the Python bindings are pinned to it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" "${generator[@]}" -DPython_EXECUTABLE=/usr/bin/python3 "$@"
else
  cmake -S . -B "$build" "$@" >/dev/null
fi
cmake --build "$build" -j "$(nproc)" ${BUILD_TARGET:+--target $BUILD_TARGET}
