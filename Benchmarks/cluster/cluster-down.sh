#!/usr/bin/env bash
# Removes everything cluster-up.sh made: namespaces, links, the bridge, the state.
STATE=${CHORUS_CLUSTER_STATE:-/tmp/chorus-cluster}
for ns in $(ip netns list 2>/dev/null | awk '/^chorus-node[0-9]+/ {print $1}'); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns delete "$ns"
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^chorus-(v[0-9]+|br0)$'); do
  ip link delete "$link" 2>/dev/null
done
rm -rf "$STATE"
echo "cluster: down"
