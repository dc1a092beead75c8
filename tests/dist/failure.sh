#!/usr/bin/env bash
# A rank fails while 4 MiB all_reduces are in flight (3 ranks, 4 s timeout), three ways:
#   kill        SIGKILL; agreement checks on (default)
#   kill-nocheck  SIGKILL; agreement checks off (DSABI_COMM_CHECK=0: only the data path runs)
#   stop        SIGSTOP: the rank stops answering without closing anything -> DS_ERR_COMM_TIMEOUT
# Expected: both survivors report the right error within the timeout and say "ok"; dsrun exits with
# the first failure's status (137 for the killed rank; 3 from the survivors when the victim is only
# stopped) and leaves no process of the job behind, stopped ones included.
# Usage: failure.sh DSRUN DIST_COMM
set -u
# A process counts as alive unless it is gone or a zombie.
live() { [ -e "/proc/$1" ] && ! grep -q "^[0-9]* ([^)]*) Z" "/proc/$1/stat" 2>/dev/null; }
dsrun=$1; dist=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
run() {  # run NAME EXPECTED_EXIT HOW [ENV...]
  local name=$1 expect=$2 how=$3; shift 3
  rm -f "$tmp"/pid.*
  cat > "$tmp/rank.sh" <<SH
#!/bin/sh
echo \$\$ > "$tmp/pid.\$RANK"
exec "$dist" failure 1 $how
SH
  chmod +x "$tmp/rank.sh"
  local start; start=$(date +%s.%N)
  env DIST_TIMEOUT_MS=4000 "$@" "$dsrun" -n 3 --master-port 0 --failure-grace 6 --kill-timeout 2 "$tmp/rank.sh" > "$tmp/out" 2>&1
  local code=$?
  local took; took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
  sed "s/^/  /" "$tmp/out"
  [ "$code" -eq "$expect" ] || { echo "FAIL $name: dsrun exited with $code, expected $expect"; status=1; }
  for r in 0 2; do
    grep -q "^\[rank $r\] survivor rank $r: ok" "$tmp/out" || { echo "FAIL $name: rank $r did not report the failure correctly"; status=1; }
  done
  grep -q "^\[rank 1\] victim rank 1" "$tmp/out" || { echo "FAIL $name: the victim did not strike"; status=1; }
  sleep 0.2
  for f in "$tmp"/pid.*; do
    local pid; pid=$(cat "$f")
    if live "$pid"; then echo "FAIL $name: process $pid ($(basename "$f")) is still alive"; status=1; kill -9 "$pid"; fi
  done
  echo "$name: dsrun exit $code after $took s"
}
run kill 137 kill
run kill-nocheck 137 kill DSABI_COMM_CHECK=0
run stop 3 stop
[ $status -eq 0 ] && echo "PASS"
exit $status
