#!/usr/bin/env bash
# OpenMPI's rsh agent for the simulated cluster: `rsh-agent.sh ADDRESS COMMAND...`
# runs COMMAND (the orted launch line) inside that node's namespace, with its own
# hostname so OpenMPI sees distinct hosts (its shared-memory transport needs that).
STATE=${CHORUS_CLUSTER_STATE:-/tmp/chorus-cluster}
address=$1
shift
read -r _ ns name < <(grep "^$address " "$STATE/nodes")
[ -n "$ns" ] || { echo "rsh-agent: $address is not a simulated node" >&2; exit 1; }
exec ip netns exec "$ns" unshare --uts bash -c 'hostname "$1"; shift; eval "$*"' rsh-agent "$name" "$@"
