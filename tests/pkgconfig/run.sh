#!/bin/sh
# Install the build tree into a fresh prefix, then build and run a consumer through pkg-config and
# through find_package(dsabi). Usage: run.sh BUILD_DIR TESTS_PKGCONFIG_DIR
set -eu
build=$1; here=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
pc=$(find "$prefix" -name dsabi.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no dsabi.pc installed"; exit 1; }
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir dsabi)
echo "pkg-config: $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs dsabi)"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Werror -o "$work/consumer_pc" "$here/consumer.c" \
   $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs dsabi) -Wl,-rpath,"$libdir"
"$work/consumer_pc"
cmake -S "$here/cmake_consumer" -B "$work/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" \
  || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/cmake_build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/cmake_build/consumer"
echo "pkg-config and find_package consumers OK"
