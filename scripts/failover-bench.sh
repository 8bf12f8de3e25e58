#!/usr/bin/env bash
# Failover benchmark: a master/slave pair on one data dir with a backlog of persistent messages
# in the store; the master is killed with SIGKILL (then made to step down) RUNS times, and each
# time `mqctl failover trigger` measures the recovery: from the kill (or stepdown request) until
# a STOMP CONNECT to the new master is answered CONNECTED. Each run also sends 1000 persistent
# messages with receipts before and consumes them after (--verify), so a loss would show.
# Prints every run and the median. Release build.
#
#   scripts/failover-bench.sh                       # 10 runs, 100,000 x 1 KiB backlog
#   RUNS=20 BACKLOG=1000000 scripts/failover-bench.sh
#   DATA_PARENT=/var/tmp scripts/failover-bench.sh  # where the data dir lives (the disk matters)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
BACKLOG=${BACKLOG:-100000}
SIZE=${SIZE:-1024}
VERIFY=${VERIFY:-1000}
DATA_PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
# mqnode's stepdown back-off (STEPDOWN_BACKOFF_MS) plus a margin: a member that just stepped
# down does not compete before then.
STEPDOWN_PAUSE=${STEPDOWN_PAUSE:-2.5}

if ! command -v jq >/dev/null; then
  echo "failover-bench: installing jq" >&2
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq
  fi
fi

cargo build --release -p mqnode -p mqctl --quiet
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c "import json,sys; print(json.load(sys.stdin)[\"target_directory\"])")/release
MQCTL="$BIN/mqctl"
export MQCTL_HOME
MQCTL_HOME=$(mktemp -d "$DATA_PARENT/mq-failover-bench.XXXXXX")
cleanup() {
  "$MQCTL" cluster destroy fbench --yes >/dev/null 2>&1 || true
  rm -rf "$MQCTL_HOME"
}
trap cleanup EXIT

median() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)," \
  "data on $(df -T "$MQCTL_HOME" | awk 'NR == 2 { print $2 }') ($DATA_PARENT)"
echo "backlog: $BACKLOG persistent messages of $SIZE bytes; verify: $VERIFY per run; runs: $RUNS"

"$MQCTL" cluster create fbench --ha --nodes 1 --topology none --mqnode "$BIN/mqnode" >/dev/null
# By the cluster's name: mqctl finds the master and logs in with the cluster's credentials.
"$MQCTL" bench fbench --queue backlog --messages "$BACKLOG" \
  --size "$SIZE" --producers 4 --consumers 0 --persistent --receipts each --window 64 -o json \
  | jq -r '"backlog loaded: \(.sent) messages"'

run() { # MODE -> prints "recovery_ms lost old new"
  "$MQCTL" failover trigger fbench --mode "$1" --verify "$VERIFY" -o json \
    | jq -r '"\(.recovery_ms) \(.verify.lost) \(.old_master) \(.new_master)"'
}

for mode in kill stepdown; do
  : >"$MQCTL_HOME/$mode.ms"
  for i in $(seq 1 "$RUNS"); do
    read -r ms lost old new < <(run "$mode")
    echo "$mode run $i: $old -> $new recovery ${ms} ms, lost $lost"
    echo "$ms" >>"$MQCTL_HOME/$mode.ms"
    if [[ "$lost" != 0 ]]; then
      echo "LOST MESSAGES in run $i" >&2
      exit 1
    fi
    if [[ $mode == kill ]]; then
      "$MQCTL" node start "fbench/$old" >/dev/null # back as the slave
    else
      sleep "$STEPDOWN_PAUSE"
    fi
  done
  echo "$mode: median $(median <"$MQCTL_HOME/$mode.ms") ms over $RUNS runs" \
    "(min $(sort -n "$MQCTL_HOME/$mode.ms" | head -1), max $(sort -n "$MQCTL_HOME/$mode.ms" | tail -1))"
done
depth=$("$MQCTL" queue stat fbench --queue backlog -o json | jq '[.queues[].depth] | add')
echo "backlog still in the store after all runs: $depth"
