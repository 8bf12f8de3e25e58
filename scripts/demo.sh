#!/usr/bin/env bash
# Builds mq and runs a local three-node cluster: creates it, sends a message, shows the queue
# statistics of every node, and leaves the cluster running for you to explore.
#   scripts/demo.sh            # create (or reuse) cluster "demo"
#   scripts/demo.sh --destroy  # stop and remove it
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins --quiet
MQCTL=target/release/mqctl

if [[ "${1:-}" == "--destroy" ]]; then
  "$MQCTL" cluster destroy demo --yes
  exit 0
fi

if ! "$MQCTL" cluster status demo >/dev/null 2>&1; then
  "$MQCTL" cluster create demo --nodes 3 --topology mesh
else
  "$MQCTL" cluster start demo
fi
"$MQCTL" queue send demo/node1 orders --body "hello from node1" --count 3
"$MQCTL" queue stat demo
"$MQCTL" cluster status demo
cat <<MSG

The cluster keeps running. Try:
  $MQCTL queue browse demo/node1 orders
  $MQCTL node kill demo/node2 && $MQCTL cluster status demo
  $MQCTL cluster destroy demo      (or: scripts/demo.sh --destroy)
MSG
