#!/usr/bin/env bash
# dsrun's ssh path for real: two "hosts" are network namespaces joined by veth pairs to a bridge in a
# third namespace (as in netns.sh; the machine's own network is untouched), each running its own
# OpenSSH server (throwaway host and client keys, config, authorized_keys and known_hosts in a temp
# dir; ~/.ssh is never touched, nor /etc/ssh's configs read). dsrun runs in the bridge namespace with its
# default launcher template plus -F only: --launcher-cmd 'ssh -F CFG -o BatchMode=yes {host}', so the
# agent command line goes through a real ssh client, sshd and the remote user's login shell.
# Checks:
#  1. the 2x2 job of netns.sh: every rank finishes, each binds to its own host's address, and the
#     master address is learnt with `hostname -I` on the first host;
#  2. an exported variable (DSABI_*, forwarded with --env) with spaces, quotes and shell
#     metacharacters reaches every remote rank unchanged;
#  3. the ranks run in dsrun's working directory (a relative program path works), as DeepSpeed's
#     runners do with `cd $PWD`;
#  4. dsrun does not read its own stdin (a `while read` loop around dsrun sees every line);
#  5. a rank failing on the second host: dsrun exits with its status and nothing is left behind;
#  6. SIGTERM to dsrun: it exits with 143 and nothing is left behind on either host.
# Exit 77 (ctest SKIP) when network namespaces cannot be created here, or sshd / ssh / ssh-keygen
# are missing (Debian: openssh-server, openssh-client; scripts/setup.sh installs them).
# Usage: ssh.sh DSRUN DIST_COMM
set -u
# A process counts as alive unless it is gone or a zombie.
live() { [ -e "/proc/$1" ] && ! grep -q "^[0-9]* ([^)]*) Z" "/proc/$1/stat" 2>/dev/null; }
sshd=$(command -v sshd || echo /usr/sbin/sshd)
for t in "$sshd" ssh ssh-keygen; do
  command -v "$t" >/dev/null || { echo "SKIPPED: $t not found (install openssh-server and openssh-client)"; exit 77; }
done
dsrun=$(readlink -f "$1"); dist=$(readlink -f "$2")  # absolute (step 3 tries a relative one)
id=$$
a=dsha$id; b=dshb$id; sw=dshs$id
net=10.$(( (id >> 8) % 200 + 20 )).$(( id % 250 + 1 ))
run_id=dsabi-ssh-test-$id
tmp=$(mktemp -d)
cleanup() {
  for f in "$tmp"/sshd.*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  for ns in $a $b $sw; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! ip netns add "$sw" 2>"$tmp/err"; then
  echo "SKIPPED: cannot create network namespaces here ($(cat "$tmp/err")); needs root and iproute2"
  exit 77
fi
t0=$(date +%s%N)
# Every step is bounded: T SECONDS COMMAND... runs COMMAND for at most SECONDS, and never past 100 s
# after the start, so that the script ends (and cleans up) before ctest's 120 s timeout.
T() {
  local left=$(( 100 - ($(date +%s%N) - t0) / 1000000000 ))
  [ "$left" -gt 0 ] || { echo "FAIL: out of time (100 s) before: ${*:2}"; return 124; }
  timeout -k 5 $(( $1 < left ? $1 : left )) "${@:2}"
}
step() { echo "== $* (at $(( ($(date +%s%N) - t0) / 1000000 )) ms)"; }

set -e
# shellcheck source=hosts.sh
source "$(dirname "$0")/hosts.sh"
make_hosts $sw $net $id $a $b

# Keys, sshd and ssh client configs, all in $tmp.
user=$(id -un)
T 10 ssh-keygen -q -t ed25519 -N '' -C dsabi-ssh-test-host -f "$tmp/host_key"
T 10 ssh-keygen -q -t ed25519 -N '' -C dsabi-ssh-test-client -f "$tmp/client_key"
cp "$tmp/client_key.pub" "$tmp/authorized_keys"
[ "$(id -u)" -eq 0 ] && root_login=prohibit-password || root_login=no
# sshd's privilege separation directory, as the openssh-server service makes it; left in place (an
# empty directory on /run), since another sshd may be using it by then.
[ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; }
: > "$tmp/ssh_config"
i=1
for ns in $a $b; do
  cat > "$tmp/sshd_config.$i" <<EOF
ListenAddress $net.$i:22
HostKey $tmp/host_key
PidFile $tmp/sshd.$i.pid
AuthorizedKeysFile $tmp/authorized_keys
AllowUsers $user
PermitRootLogin $root_login
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
EOF
  # sshd forks into the background once it listens; the daemon writes the pid file.
  T 10 ip netns exec $ns "$sshd" -f "$tmp/sshd_config.$i" -E "$tmp/sshd.$i.log" || { echo "FAIL: sshd did not start in $ns:"; cat "$tmp/sshd.$i.log"; exit 1; }
  cat >> "$tmp/ssh_config" <<EOF
Host host$i
  HostName $net.$i
  User $user
  IdentityFile $tmp/client_key
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $tmp/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking accept-new
  ConnectTimeout 10
  LogLevel ERROR
EOF
  i=$((i + 1))
done
set +e
for i in 1 2; do
  for _ in $(seq 100); do [ -s "$tmp/sshd.$i.pid" ] && break; sleep 0.05; done
  [ -s "$tmp/sshd.$i.pid" ] || { echo "FAIL: sshd $i wrote no pid file in 5 s:"; cat "$tmp/sshd.$i.log"; exit 1; }
done

status=0
fail() { echo "FAIL: $*"; status=1; }
show_logs() { for f in "$tmp"/sshd.*.log; do echo "--- $(basename "$f")"; tail -n 20 "$f"; done; }
# dsrun in the bridge namespace, through ssh; a plain dsrun with the default template would differ
# only in the -F.
launcher="ssh -F $tmp/ssh_config -o BatchMode=yes {host}"
in_sw() { T "$1" ip netns exec $sw "${@:2}"; }

for h in host1 host2; do
  if ! out=$(in_sw 15 ssh -F "$tmp/ssh_config" -o BatchMode=yes $h 'echo ok' 2>&1 </dev/null) || ! grep -qx ok <<<"$out"; then
    if grep -q "account is locked" "$tmp"/sshd.*.log; then  # without PAM, sshd refuses a locked account ('!' in shadow)
      echo "SKIPPED: sshd refuses $user: account is locked"; exit 77
    fi
    echo "FAIL: cannot log in to $h with ssh: $out"; show_logs; exit 1
  fi
done

printf '# two hosts, two slots each\nhost1 slots=2\nhost2 slots=2\n' > "$tmp/hosts"
run() { in_sw "${RUN_LIMIT:-30}" "$dsrun" --hostfile "$tmp/hosts" --run-id $run_id --launcher-cmd "$launcher" "$@"; }

# 1. The 2x2 job.
step "1. 2x2 job"
start=$(date +%s%N)
RUN_LIMIT=60 run --master-port 29555 "$dist" hosts $net.1 $net.2 > "$tmp/out" 2>&1
code=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$tmp/out"
[ $code -eq 0 ] || fail "the 2x2 run exited with $code"
for r in 0 1 2 3; do
  grep -q "^\[rank $r\] hosts on 4 ranks (cpu)" "$tmp/out" || fail "rank $r did not finish"
done
grep -q "^\[rank 0\] host 0: .*\"bind_addr\":\"$net.1\"" "$tmp/out" || fail "rank 0 did not bind to $net.1"
grep -q "^\[rank 3\] host 1: .*\"bind_addr\":\"$net.2\"" "$tmp/out" || fail "rank 3 did not bind to $net.2"
grep -q "\"master_addr\":\"$net.1\"" "$tmp/out" || fail "the master address was not learnt from the first host"
echo "2 hosts x 2 ranks over ssh: exit $code after $took ms"

# 2. Exported variables reach every remote rank byte for byte.
step "2. environment"
value="two  words, 'single' \"double\" \$HOME \`id\` \\ ; & | * ~ #end"
DSABI_SSH_TEST_VALUE=$value DSABI_SSH_TEST_LINES=$'line 1\n\tline 2\n' run --master-port 29556 sh -c \
  'printf "[v] %s\n" "$DSABI_SSH_TEST_VALUE"; [ "${DSABI_SSH_TEST_LINES}x" = "$(printf "line 1\n\tline 2\nx")" ] || echo "[lines] wrong"' \
  > "$tmp/out_env" 2>&1
code=$?
cat "$tmp/out_env"
[ $code -eq 0 ] || fail "the environment run exited with $code"
for r in 0 1 2 3; do
  grep -qxF "[rank $r] [v] $value" "$tmp/out_env" || fail "rank $r did not get DSABI_SSH_TEST_VALUE unchanged"
done
grep -q "\[lines\] wrong" "$tmp/out_env" && fail "a variable with newlines and a tab did not arrive unchanged"

# 3. The working directory: ranks start where dsrun was started.
step "3. working directory"
mkdir "$tmp/work dir"
printf '#!/bin/sh\necho "[cwd] $(pwd)"\n' > "$tmp/work dir/prog.sh"
chmod +x "$tmp/work dir/prog.sh"
(cd "$tmp/work dir" && run --master-port 29557 ./prog.sh) > "$tmp/out_cwd" 2>&1
code=$?
cat "$tmp/out_cwd"
[ $code -eq 0 ] || fail "the relative program path run exited with $code"
for r in 0 1 2 3; do
  grep -qxF "[rank $r] [cwd] $tmp/work dir" "$tmp/out_cwd" || fail "rank $r did not run in dsrun's working directory"
done

# 4. dsrun leaves its stdin alone (ssh reads its stdin unless told not to).
step "4. stdin"
printf 'one\ntwo\n' | {
  n=0
  while read -r line; do
    run --master-port 29558 true > /dev/null 2>&1 || fail "run '$line' failed"
    n=$((n + 1))
  done
  [ $n -eq 2 ] || fail "a while-read loop around dsrun ran $n times, not 2: dsrun consumed its stdin"
  exit $status
} || status=1

# The ranks (pid files) and node agents (their command lines carry our run id) must be gone; the
# remote agents end their ranks once their ssh connection closes, so give them up to 5 s.
all_started() { [ "$(ls "$tmp"/pid.* 2>/dev/null | wc -l)" -eq 4 ]; }
leftovers() {
  local pids="" pid f
  for _ in $(seq 100); do
    pids=""
    for f in "$tmp"/pid.*; do [ -e "$f" ] || continue; for pid in $(cat "$f"); do live "$pid" && pids="$pids $pid"; done; done
    for pid in $(pgrep -f -- "--run-id $run_id"); do live "$pid" && pids="$pids $pid"; done
    [ -z "$pids" ] && return
    sleep 0.05
  done
  for pid in $pids; do
    fail "$1: pid $pid is still alive: $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | cut -c1-120)"
    kill -9 "$pid" 2>/dev/null
  done
}
# Ranks for steps 5 and 6: each starts a child of its own (what a rank starts must go too), writes
# both pids, waits (at most 10 s) until all four ranks have, then does ACTION.
ranks() {
  echo 'sleep 300 & echo $$ $! > '"$tmp"'/pid.$RANK; i=0; while [ $(ls '"$tmp"'/pid.* | wc -l) -lt 4 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; '"$1"
}

# 5. A failure on the second host ends the job on both hosts.
step "5. failure on host2"
run --master-port 29559 sh -c "$(ranks 'if [ "$RANK" = 3 ]; then exit 4; fi; wait')" > "$tmp/out2" 2>&1
code=$?
cat "$tmp/out2"
[ $code -eq 4 ] || fail "expected exit status 4 from rank 3, got $code"
all_started || fail "not every rank started"
leftovers "after the failure"

# 6. SIGTERM to dsrun while the ranks run (dsrun itself, not a timeout wrapper: ip netns exec execs it).
step "6. SIGTERM"
rm -f "$tmp"/pid.*
ip netns exec $sw "$dsrun" --hostfile "$tmp/hosts" --run-id $run_id --launcher-cmd "$launcher" --master-port 29560 \
  sh -c "$(ranks 'wait')" > "$tmp/out3" 2>&1 &
ds=$!
for _ in $(seq 400); do all_started && break; sleep 0.05; done
all_started || fail "not every rank started within 20 s"
kill -TERM $ds
for _ in $(seq 200); do live $ds || break; sleep 0.05; done
if live $ds; then fail "dsrun still runs 10 s after SIGTERM"; kill -9 $ds; fi
wait $ds
code=$?
cat "$tmp/out3"
[ $code -eq 143 ] || fail "expected exit status 143 after SIGTERM, got $code"
leftovers "after SIGTERM"

step "done"
[ $status -eq 0 ] || show_logs
[ $status -eq 0 ] && echo "PASS"
exit $status
