#!/usr/bin/env bash
# dsrun as a process supervisor: exit status of the first failing rank, termination of the other
# ranks and of what they started (process groups), signals, output prefixes, exec failures.
# Usage: launcher.sh DSRUN
set -u
# A process counts as alive unless it is gone or a zombie.
live() { [ -e "/proc/$1" ] && ! grep -q "^[0-9]* ([^)]*) Z" "/proc/$1/stat" 2>/dev/null; }
dsrun=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
alive() { for f in "$tmp"/$1.*; do [ -f "$f" ] && live "$(cat "$f")" && return 0; done; return 1; }

# 1. Output is prefixed per rank, partial last lines included, stdout and stderr kept apart.
"$dsrun" -n 3 --master-port 0 sh -c 'echo "out $RANK/$WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE $CROSS_RANK"; echo "err $RANK" >&2; printf "tail $RANK"' \
  > "$tmp/o" 2> "$tmp/e"
check "all ranks exit 0 -> dsrun exits 0" "[ $? -eq 0 ]"
check "stdout prefixed" "grep -qx '\[rank 2\] out 2/3 local 2/3 0' '$tmp/o'"
check "partial line flushed" "grep -qx '\[rank 1\] tail 1' '$tmp/o'"
check "stderr prefixed and separate" "grep -qx '\[rank 0\] err 0' '$tmp/e' && ! grep -q err '$tmp/o'"

# 2. The first failing rank's status wins; the others and their children are terminated.
start=$(date +%s)
"$dsrun" -n 4 --master-port 0 sh -c '
  sleep 300 & echo $! > '"$tmp"'/child.$RANK
  echo $$ > '"$tmp"'/rank.$RANK
  if [ "$RANK" = 2 ]; then sleep 0.5; exit 7; fi
  wait' > "$tmp/o" 2>&1
code=$?
took=$(( $(date +%s) - start ))
check "exit status of the failing rank (7, got $code)" "[ $code -eq 7 ]"
check "terminated promptly (${took} s)" "[ $took -lt 10 ]"
check "message names the rank" "grep -q 'rank 2 exited with status 7' '$tmp/o'"
sleep 0.2
check "no rank left" "! alive rank"
check "no child of a rank left (process groups)" "! alive child"
rm -f "$tmp"/rank.* "$tmp"/child.*

# 3. A rank that ignores SIGTERM is killed after --kill-timeout.
start=$(date +%s)
"$dsrun" -n 2 --master-port 0 --kill-timeout 1 sh -c '
  echo $$ > '"$tmp"'/rank.$RANK
  trap "" TERM
  if [ "$RANK" = 1 ]; then exit 3; fi
  while :; do sleep 0.1; done' > /dev/null 2>&1
code=$?
took=$(( $(date +%s) - start ))
check "SIGTERM-proof rank killed, status 3 (got $code, ${took} s)" "[ $code -eq 3 ] && [ $took -lt 8 ]"
sleep 0.2
check "no rank left after SIGKILL" "! alive rank"
rm -f "$tmp"/rank.*

# 4. A signal killing a rank gives 128 + signal.
"$dsrun" -n 2 --master-port 0 sh -c 'if [ "$RANK" = 0 ]; then kill -SEGV $$; fi; sleep 30' > /dev/null 2>&1
code=$?
check "rank killed by SIGSEGV -> 139 (got $code)" "[ $code -eq 139 ]"

# 5. SIGTERM to dsrun terminates the job: exit 143, nothing left.
"$dsrun" -n 3 --master-port 0 sh -c 'echo $$ > '"$tmp"'/rank.$RANK; sleep 300 & echo $! > '"$tmp"'/child.$RANK; wait' > /dev/null 2>&1 &
pid=$!
for i in $(seq 50); do [ "$(ls "$tmp"/child.* 2>/dev/null | wc -l)" -eq 3 ] && break; sleep 0.1; done
kill -TERM $pid
wait $pid
code=$?
check "SIGTERM to dsrun -> 143 (got $code)" "[ $code -eq 143 ]"
sleep 0.2
check "no rank left after SIGTERM to dsrun" "! alive rank && ! alive child"
rm -f "$tmp"/rank.* "$tmp"/child.*

# 6. A program that cannot be started.
"$dsrun" -n 2 --master-port 0 /nonexistent/program > "$tmp/o" 2>&1
code=$?
check "exec failure -> 127 (got $code)" "[ $code -eq 127 ] && grep -q 'cannot run' '$tmp/o'"

# 7. --failure-grace lets the other ranks finish on their own.
"$dsrun" -n 2 --master-port 0 --failure-grace 10 sh -c 'if [ "$RANK" = 0 ]; then exit 5; fi; sleep 1; echo finished' > "$tmp/o" 2>&1
code=$?
check "grace: status 5, other rank finished (got $code)" "[ $code -eq 5 ] && grep -q '\[rank 1\] finished' '$tmp/o'"

# 8. Usage errors.
"$dsrun" sh -c true > "$tmp/o" 2>&1
check "missing -n is an error" "[ $? -eq 2 ] && grep -q -- '-n N' '$tmp/o'"
"$dsrun" -n 2 --bogus true > "$tmp/o" 2>&1
check "unknown option is an error" "[ $? -eq 2 ] && grep -q 'unknown option' '$tmp/o'"

echo "launcher: $fails failure(s)"
[ $fails -eq 0 ]
