#!/usr/bin/env bash
# Simulated cluster on one machine: NODES network namespaces (chorus-node0, ...) joined
# by a bridge, each with its own address in 10.77.0.0/24 and, optionally, a shaped
# link (BANDWIDTH like 1gbit, via tc tbf; LATENCY like 100us, via tc netem where the
# kernel has it). `cluster-mpirun` then
# places RANKS_PER_NODE ranks on each simulated node; within a node ranks share
# memory, between nodes they talk TCP over the bridge.
#
#     NODES=2 RANKS_PER_NODE=2 BANDWIDTH=1gbit Benchmarks/cluster/cluster-up.sh
#     Benchmarks/cluster/cluster-mpirun -n 4 .build/release/allreduce-bench ...
#     Benchmarks/cluster/cluster-down.sh
#
# Needs root (namespaces, links, qdiscs). Only the addresses it creates are used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NODES=${NODES:-2}
RANKS_PER_NODE=${RANKS_PER_NODE:-2}
BANDWIDTH=${BANDWIDTH:-}
LATENCY=${LATENCY:-}
STATE=${CHORUS_CLUSTER_STATE:-/tmp/chorus-cluster}
SUBNET=10.77.0
BRIDGE=chorus-br0

[ "$(id -u)" -eq 0 ] || { echo "cluster-up: needs root (network namespaces)" >&2; exit 1; }
[ "$NODES" -ge 1 ] && [ "$NODES" -le 200 ] || { echo "cluster-up: NODES must be 1..200" >&2; exit 1; }
[ "$RANKS_PER_NODE" -ge 1 ] || { echo "cluster-up: RANKS_PER_NODE must be at least 1" >&2; exit 1; }

# A failed or repeated start leaves nothing half-built behind.
"$HERE/cluster-down.sh" >/dev/null 2>&1 || true
trap '"$HERE/cluster-down.sh" >/dev/null 2>&1' ERR

mkdir -p "$STATE"
ip link add "$BRIDGE" type bridge
ip addr add "$SUBNET.254/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
: > "$STATE/hostfile"
: > "$STATE/nodes"
for ((n = 0; n < NODES; n++)); do
  ns=chorus-node$n
  address=$SUBNET.$((n + 1))
  ip netns add "$ns"
  ip link add "chorus-v$n" type veth peer name eth0 netns "$ns"
  ip link set "chorus-v$n" master "$BRIDGE" up
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # Shape what each node sends, like a NIC at line rate: bandwidth with a token
  # bucket (tbf), added delay with netem when the kernel has it.
  if [ -n "$LATENCY" ]; then
    if ! ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: netem delay "$LATENCY" 2>/dev/null; then
      echo "cluster-up: this kernel has no netem qdisc, so LATENCY cannot be simulated; leave it unset" >&2
      false
    fi
    [ -z "$BANDWIDTH" ] || ip netns exec "$ns" tc qdisc add dev eth0 parent 1: handle 2: tbf rate "$BANDWIDTH" burst 256kb latency 100ms
  elif [ -n "$BANDWIDTH" ]; then
    ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$BANDWIDTH" burst 256kb latency 100ms
  fi
  echo "$address slots=$RANKS_PER_NODE" >> "$STATE/hostfile"
  echo "$address $ns node$n" >> "$STATE/nodes"
done
echo "$NODES $RANKS_PER_NODE ${BANDWIDTH:-unshaped} ${LATENCY:-0}" > "$STATE/shape"
trap - ERR
echo "cluster: $NODES nodes x $RANKS_PER_NODE ranks, links ${BANDWIDTH:-unshaped}${LATENCY:+, $LATENCY latency}; hostfile $STATE/hostfile"
