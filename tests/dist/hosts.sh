# Sourced by netns.sh and ssh.sh: "hosts" as network namespaces on one machine.
#
# make_hosts SW NET TAG NS...  joins each namespace NS (created here; SW must exist already) to a
# bridge br0 in namespace SW through a veth pair: the i-th NS (from 1) gets eth0 = NET.i/24 and br0
# gets NET.100/24, so that a process in SW reaches every host. TAG makes the veth names unique.
# Nothing is created outside these namespaces: the machine's own network is untouched.
make_hosts() {
  local sw=$1 net=$2 tag=$3 i=1 ns
  shift 3
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" addr add "$net.100/24" dev br0
  ip -n "$sw" link set br0 up
  ip -n "$sw" link set lo up
  for ns in "$@"; do
    ip netns add "$ns"
    ip link add "va$tag$i" type veth peer name "vb$tag$i"
    ip link set "va$tag$i" netns "$ns"
    ip link set "vb$tag$i" netns "$sw"
    ip -n "$ns" link set "va$tag$i" name eth0
    ip -n "$ns" addr add "$net.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$sw" link set "vb$tag$i" master br0
    ip -n "$sw" link set "vb$tag$i" up
    i=$((i + 1))
  done
}
