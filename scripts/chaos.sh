#!/usr/bin/env bash
# Chaos soak: two master/slave pairs (A1+A2, B1+B2, each on one shared data directory) and a
# network connector from A to B through masterslave:(B1,B2); producers send persistent messages
# with receipts to A through failover, consumers on B ack each one, and for --minutes N (20 by
# default) the current masters are killed (-9), paused (SIGSTOP 0.5-5 s) and stepped down at
# random, one fault at a time. Then every message is audited: exit 1 if one that got a RECEIPT
# was never consumed, or if a second delivery lacked redelivered:true. Release build.
#
#   scripts/chaos.sh                           # 20 minutes, 4 producers, 4 consumers
#   scripts/chaos.sh --minutes 2 --seed 42     # shorter, reproducible choice of faults
#   scripts/chaos.sh --faults kill_a,kill_b    # only these kinds (see docs/chaos.md)
#
# Every option is passed to the driver (tests/examples/chaos.rs). Progress and fault lines go to
# stdout, the last line is a JSON summary; node logs (and, on failure, the data directories) are
# kept under $CHAOS_DIR (default target/chaos/<UTC time>).
#
#   scripts/chaos.sh replicated --minutes 10 --seed 7
#
# `replicated` runs the soak of a replicated group instead (tests/examples/chaos_replicated.rs):
# three `--ha replicated` members, each in a network namespace of its own, and ZooKeeper in
# another; random SIGKILLs of the master or a replica, SIGSTOPs of the master and silent cuts
# (nft drop) of the master's or a replica's links, one at a time, under receipted load; then the
# audit of every receipted message and of the members' roles (never two masters in one sample).
# Options: --minutes [10], --seed, --producers [4], --consumers [4], --session-ms [1000],
# --drain SECS [120], --sync quorum_disk|quorum_mem|local_disk [quorum_disk]. Needs root,
# iproute2, nftables, a JRE and ZooKeeper (scripts/test.sh installs them). CHAOS_PROFILE=dev
# runs the debug builds instead of release ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" == "replicated" ]]; then
    shift
    if [[ "${CHAOS_PROFILE:-release}" == "dev" ]]; then
        profile=() test_profile=debug
    else
        profile=(--release) test_profile=release
    fi
    cargo build "${profile[@]}" --workspace --bins --quiet
    cargo build "${profile[@]}" -p mq-tests --example chaos_replicated --quiet
    TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    CHAOS_DIR=${CHAOS_DIR:-$TARGET/chaos/replicated-$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$CHAOS_DIR"
    echo "chaos replicated: $(nproc) CPUs, $(uname -sr), $test_profile builds; log in $CHAOS_DIR"
    export MQ_TEST_PROFILE=$test_profile
    "$TARGET/$test_profile/examples/chaos_replicated" "$@" | tee "$CHAOS_DIR/run.log"
    exit "${PIPESTATUS[0]}"
fi

cargo build --release --workspace --bins --quiet
cargo build --release -p mq-tests --example chaos --quiet
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
CHAOS_DIR=${CHAOS_DIR:-$TARGET/chaos/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$CHAOS_DIR"
echo "chaos: $(nproc) CPUs, $(uname -sr); logs in $CHAOS_DIR"

export MQ_TEST_PROFILE=release
cargo run --release --quiet -p mq-tests --example chaos -- --log-dir "$CHAOS_DIR" "$@" \
    | tee "$CHAOS_DIR/run.log"
