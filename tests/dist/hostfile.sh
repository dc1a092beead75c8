#!/usr/bin/env bash
# dsrun's DeepSpeed hostfile and --include / --exclude rules, through --dry-run (which prints where
# every rank goes: "rank=R host=H local_rank=L local_world_size=N cross_rank=C slot=S").
# Usage: hostfile.sh DSRUN
set -u
dsrun=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
plan() { "$dsrun" --dry-run "$@" 2>&1; }
hosts() { plan "$@" | sed -n 's/^rank=\([0-9]*\) host=\([^ ]*\) .*slot=\([0-9]*\)$/\2:\3/p' | tr '\n' ' ' | sed 's/ $//'; }

cat > "$tmp/hosts" <<'H'
# a DeepSpeed hostfile
worker-0 slots=2
   worker-1    slots=4   # trailing text is ignored, as DeepSpeed's regex does

worker-2 slots=1
H
check "all slots in hostfile order" "[ \"$(hosts -H "$tmp/hosts" x)\" = 'worker-0:0 worker-0:1 worker-1:0 worker-1:1 worker-1:2 worker-1:3 worker-2:0' ]"
check "ranks, local ranks, node ranks" "plan -H '$tmp/hosts' x | grep -qx 'rank=4 host=worker-1 local_rank=2 local_world_size=4 cross_rank=1 slot=2'"
check "--include hosts" "[ \"$(hosts -H "$tmp/hosts" --include 'worker-2@worker-0' x)\" = 'worker-0:0 worker-0:1 worker-2:0' ]"
check "--include slots" "[ \"$(hosts -H "$tmp/hosts" --include 'worker-1:3,1' x)\" = 'worker-1:1 worker-1:3' ]"
check "--include mixed" "[ \"$(hosts -H "$tmp/hosts" -i 'worker-0:1@worker-2' x)\" = 'worker-0:1 worker-2:0' ]"
check "--exclude host" "[ \"$(hosts -H "$tmp/hosts" --exclude worker-1 x)\" = 'worker-0:0 worker-0:1 worker-2:0' ]"
check "--exclude slots" "[ \"$(hosts -H "$tmp/hosts" --exclude 'worker-1:0,2@worker-0:0' x)\" = 'worker-0:1 worker-1:1 worker-1:3 worker-2:0' ]"
check "local ranks renumbered after a filter" "plan -H '$tmp/hosts' --exclude 'worker-1:0,2' x | grep -qx 'rank=3 host=worker-1 local_rank=1 local_world_size=2 cross_rank=1 slot=3'"
check "--num-nodes" "[ \"$(hosts -H "$tmp/hosts" --num-nodes 1 x)\" = 'worker-0:0 worker-0:1' ]"
check "--num-procs (alias --num_gpus)" "[ \"$(hosts -H "$tmp/hosts" --num_gpus 1 x)\" = 'worker-0:0 worker-1:0 worker-2:0' ]"
check "-n on one host" "[ \"$(hosts -n 3 x)\" = 'localhost:0 localhost:1 localhost:2' ]"

# Errors, with DeepSpeed's meaning.
err() { plan "$@" > "$tmp/err"; echo $? > "$tmp/code"; }
err -H "$tmp/hosts" --include worker-0 --exclude worker-1 x
check "include and exclude together" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'mutually exclusive' '$tmp/err'"
err -H "$tmp/hosts" --include worker-9 x
check "unknown host in a filter" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q \"hostname 'worker-9' not found in hostfile\" '$tmp/err'"
err -H "$tmp/hosts" --include worker-0:5 x
check "unknown slot in a filter" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q \"no slot '5' specified on host 'worker-0'\" '$tmp/err'"
err -H "$tmp/hosts" --exclude 'worker-0@worker-1@worker-2' x
check "nothing left" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'no slots are left' '$tmp/err'"
printf 'a slots=2\na slots=1\n' > "$tmp/dup"
err -H "$tmp/dup" x
check "duplicate host" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q \"host 'a' is listed twice\" '$tmp/err'"
printf 'a slots=2\nb 4\n' > "$tmp/bad"
err -H "$tmp/bad" x
check "bad line names file and line" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'bad:2: bad entry' '$tmp/err'"
printf '# only a comment\n\n' > "$tmp/empty"
err -H "$tmp/empty" x
check "empty hostfile" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'empty or not formatted correctly' '$tmp/err'"
err -H "$tmp/nonexistent" x
check "missing hostfile" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'cannot read hostfile' '$tmp/err'"
err --include worker-0 -n 2 x
check "filters need a hostfile" "[ \$(cat '$tmp/code') -eq 2 ] && grep -q 'need --hostfile' '$tmp/err'"

echo "hostfile: $fails failure(s)"
[ $fails -eq 0 ]
