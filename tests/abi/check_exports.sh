#!/bin/sh
# The exported symbols of libdsabi must be exactly the committed list (tests/abi/dsabi.symbols), and
# every one of them must be reachable through ds_get_proc_address (src/capi/api_list.inc).
# Usage: check_exports.sh LIBDSABI SYMBOLS_FILE API_LIST
set -eu
lib=$1; expected=$2; api_list=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "W" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' \
  | sed 's/@.*//' | grep -v '^DSABI_' | sort -u > "$tmp/actual"
grep -v '^#' "$expected" | sed '/^$/d' | sort -u > "$tmp/expected"
status=0
if ! diff -u "$tmp/expected" "$tmp/actual" > "$tmp/diff"; then
  echo "exported symbols differ from $expected (- expected, + exported):"; cat "$tmp/diff"; status=1
fi
if nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | grep -v '^ds_' | grep -v '^DSABI_' | grep -q .; then
  echo "non-ds_ symbols are exported:"; nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ds_' | grep -v '^DSABI_'; status=1
fi
sed -n 's/^DS_FN(\(.*\))$/ds_\1/p' "$api_list" > "$tmp/table"
echo ds_get_api >> "$tmp/table"
sort -u "$tmp/table" -o "$tmp/table"
if ! diff -u "$tmp/table" "$tmp/actual" > "$tmp/diff2"; then
  echo "ds_get_proc_address table (src/capi/api_list.inc) differs from the exports (- table, + exported):"; cat "$tmp/diff2"; status=1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libdsabi.so.0" ] || { echo "SONAME is '$soname', expected libdsabi.so.0"; status=1; }
n=$(wc -l < "$tmp/actual")
[ $status -eq 0 ] && echo "exports OK: $n ds_* symbols, SONAME $soname, all in the ds_get_api table"
exit $status
