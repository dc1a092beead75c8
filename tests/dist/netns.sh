#!/usr/bin/env bash
# Two "hosts" on one machine: network namespaces joined by veth pairs to a bridge (itself in a third
# namespace, so the machine's own network is untouched). dsrun reads a DeepSpeed hostfile naming the
# namespaces and reaches them with --launcher-cmd 'ip netns exec {host} sh -c {cmd}'; the master
# address is learnt with `hostname -I` on the first host. Each rank must bind to its own host's
# address. Then a rank on the second host fails: dsrun must exit with its status and leave nothing
# behind on either host.
# Exit 77 (ctest SKIP) when network namespaces cannot be created here.
# Usage: netns.sh DSRUN DIST_COMM
set -u
# A process counts as alive unless it is gone or a zombie.
live() { [ -e "/proc/$1" ] && ! grep -q "^[0-9]* ([^)]*) Z" "/proc/$1/stat" 2>/dev/null; }
dsrun=$1; dist=$2
id=$$
a=dsa$id; b=dsb$id; sw=dss$id
net=10.$(( (id >> 8) % 200 + 20 )).$(( id % 250 + 1 ))
tmp=$(mktemp -d)
cleanup() {
  for ns in $a $b $sw; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! ip netns add "$sw" 2>"$tmp/err"; then
  echo "SKIPPED: cannot create network namespaces here ($(cat "$tmp/err")); needs root and iproute2"
  exit 77
fi
set -e
# shellcheck source=hosts.sh
source "$(dirname "$0")/hosts.sh"
make_hosts $sw $net $id $a $b
set +e

printf '# two hosts, two slots each\n%s slots=2\n%s slots=2\n' $a $b > "$tmp/hosts"
status=0
start=$(date +%s)
"$dsrun" --hostfile "$tmp/hosts" --master-port 29555 --launcher-cmd 'ip netns exec {host} sh -c {cmd}' \
  "$dist" hosts $net.1 $net.2 > "$tmp/out" 2>&1
code=$?
took=$(( $(date +%s) - start ))
cat "$tmp/out"
[ $code -eq 0 ] || { echo "FAIL: the 2x2 run exited with $code"; status=1; }
for r in 0 1 2 3; do
  grep -q "^\[rank $r\] hosts on 4 ranks (cpu)" "$tmp/out" || { echo "FAIL: rank $r did not finish"; status=1; }
done
grep -q "^\[rank 0\] host 0: .*\"bind_addr\":\"$net.1\"" "$tmp/out" || { echo "FAIL: rank 0 did not bind to $net.1"; status=1; }
grep -q "^\[rank 3\] host 1: .*\"bind_addr\":\"$net.2\"" "$tmp/out" || { echo "FAIL: rank 3 did not bind to $net.2"; status=1; }
grep -q "\"master_addr\":\"$net.1\"" "$tmp/out" || { echo "FAIL: the master address was not learnt from the first host"; status=1; }
echo "2 hosts x 2 ranks: exit $code after $took s"

# A failure on the second host ends the job on both hosts.
"$dsrun" --hostfile "$tmp/hosts" --master-port 29556 --launcher-cmd 'ip netns exec {host} sh -c {cmd}' sh -c \
  'echo $$ > '"$tmp"'/pid.$RANK; if [ "$RANK" = 3 ]; then sleep 0.5; exit 4; fi; sleep 300' > "$tmp/out2" 2>&1
code=$?
cat "$tmp/out2"
[ $code -eq 4 ] || { echo "FAIL: expected exit status 4 from rank 3, got $code"; status=1; }
sleep 0.3
for f in "$tmp"/pid.*; do
  pid=$(cat "$f")
  if live "$pid"; then echo "FAIL: $(basename "$f") (pid $pid) is still alive"; status=1; kill -9 "$pid"; fi
done
[ "$(ls "$tmp"/pid.* 2>/dev/null | wc -l)" -eq 4 ] || { echo "FAIL: not every rank started"; status=1; }
[ $status -eq 0 ] && echo "PASS"
exit $status
