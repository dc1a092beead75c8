#!/bin/sh
# ABI gate: compare libdsabi against the committed baseline (tests/abi/dsabi.abi) with abidiff.
# Any nonzero exit fails (4 = ABI change, including struct layout; 8/12 = incompatible change).
# Both sides are abidw dumps restricted to the public header's types, so private C++ types never
# count and the check does not depend on where the tree was built.
# To accept an intended change (bumping the SONAME if it is incompatible): DSABI_ABI_UPDATE=1.
# Usage: abidiff.sh LIBDSABI BASELINE_XML INCLUDE_DIR
set -u
lib=$1; baseline=$2; incdir=$3
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
  echo "FAIL: $lib has no debug info; abidiff would compare symbols only. Build with -g (RelWithDebInfo)."
  exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
abidw --no-corpus-path --hd "$incdir" --drop-private-types --exported-interfaces-only --out-file "$tmp/current.abi" "$lib" || { echo "FAIL: abidw exited $?"; exit 1; }
if [ "${DSABI_ABI_UPDATE:-0}" = 1 ]; then
  cp "$tmp/current.abi" "$baseline"; echo "baseline updated: $baseline"; exit 0
fi
[ -f "$baseline" ] || { echo "FAIL: no baseline $baseline (create it with DSABI_ABI_UPDATE=1)"; exit 1; }
abidiff --no-added-syms "$baseline" "$tmp/current.abi" > "$tmp/report"
rc=$?
cat "$tmp/report"
if [ $rc -ne 0 ]; then
  echo "FAIL: abidiff exit $rc (4 = ABI change, 8/12 = incompatible). If intended, update the baseline with DSABI_ABI_UPDATE=1 and explain it in the commit."
  exit 1
fi
echo "abidiff OK: no ABI change against $(basename "$baseline")"
