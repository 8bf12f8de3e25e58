#!/usr/bin/env bash
# mqnode against ActiveMQ Classic, side by side, on this machine (docs/BENCHMARKS.md).
#
# Builds the release binaries, installs Debian's `activemq` package if it is missing, then for
# ROUNDS rounds starts each broker in turn (the order alternates per round), alone on the
# machine, with its persistent store on the same disk, and runs the scenarios of docs/BENCHMARKS.md
# with `mqctl bench`. Prints one table of medians with the mqnode/ActiveMQ ratio, followed by
# the scale figures. Everything it starts runs on loopback and is stopped on exit, whatever
# happens; its files live in one temporary directory, removed at the end (KEEP=1 keeps it).
#
#   scripts/bench.sh                   # full run (about 25 minutes on 2 cores)
#   ROUNDS=1 BACKLOG=100000 SCALE=0 scripts/bench.sh   # a quick look
#   ONLY=backlog scripts/bench.sh      # 1,000,000 messages backlogged: memory, restart, drain
#   ONLY=replicated scripts/bench.sh   # --ha replicated groups of 3 against one broker
#
# Settings (environment): ROUNDS (3), BACKLOG messages preloaded for the backlog figures
# (1000000; 0 skips them), ONLY=backlog runs only the backlog figures (KINDS=mqnode: only
# mqnode's), ONLY=replicated only the replicated group's (TAKEOVERS kills, 10), SCALE=0 skips the
# mqnode-only scale figures, BENCH_DIR (where the
# temporary directory goes: both stores live there; default /var/tmp), BASE_PORT (61800).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
BACKLOG=${BACKLOG:-1000000}
SCALE=${SCALE:-1}
ONLY=${ONLY:-all}
KINDS=${KINDS:-mqnode activemq}
if [[ $ONLY == backlog ]]; then
  SCALE=0
  ((BACKLOG > 0)) || BACKLOG=1000000
fi
if [[ $ONLY == replicated ]]; then
  SCALE=0
  BACKLOG=0
fi
BASE_PORT=${BASE_PORT:-61800}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
AMQ_HOME=/usr/share/activemq

# Message counts per scenario: each run lasts a few seconds on either broker.
N_P11R=${N_P11R:-5000}     # persistent, 1+1, a receipt per message
N_P44R=${N_P44R:-20000}    # persistent, 4+4, a receipt per message
N_P11N=${N_P11N:-50000}    # persistent, 1+1, no receipts
N_N11=${N_N11:-200000}     # non-persistent, 1+1
N_BRP=${N_BRP:-3000}       # through a bridge, persistent with receipts
N_BRN=${N_BRN:-100000}     # through a bridge, non-persistent
WARMUP=${WARMUP:-1000}     # per run, not counted (the JVM needs it more than mqnode)

log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- processes: every one we start is tracked and stopped on exit ----------------------------

PIDS=()
WORK=""

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$WORK" && -d "$WORK" && "${KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

untrack() {
  local keep=() pid
  for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

# stop PID: SIGTERM, then SIGKILL after 20 s.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  untrack "$pid"
}

# kill9 PID: the crash of the failover figure.
kill9() {
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  untrack "$1"
}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Whether a STOMP CONNECT on 127.0.0.1:PORT is answered with CONNECTED.
stomp_connected() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'CONNECT\naccept-version:1.2\nhost:localhost\n\n\0' >&3
    IFS= read -r -t 5 -u 3 line || exit 1
    printf 'DISCONNECT\n\n\0' >&3
    [[ "${line%$'\r'}" == CONNECTED ]]
  ) 2>/dev/null
}

# wait_stomp PORT SECS PID: polls until CONNECTED; fails if PID dies or SECS pass.
wait_stomp() {
  local port=$1 deadline=$(($(now_us) + $2 * 1000000)) pid=${3:-}
  while (($(now_us) < deadline)); do
    stomp_connected "$port" && return 0
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.005
  done
  return 1
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- setup ---------------------------------------------------------------------------------

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

if [[ ! -d "$AMQ_HOME" ]]; then
  log "installing ActiveMQ Classic (Debian package activemq)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q activemq
fi
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
command -v "$JAVA" >/dev/null || die "no java found (the activemq package should have installed one)"
AMQ_LOG4J=/etc/activemq/instances-available/main/log4j2.properties
[[ -f "$AMQ_LOG4J" ]] || die "$AMQ_LOG4J is missing: is the activemq package complete?"

log "building release binaries"
cargo build --release --bins --quiet
cargo build --release -p mq-tests --example rtt_probe --quiet
TEMPLATE=$PWD/scripts/activemq/activemq.xml

# Many idle connections need many descriptors, on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "$BENCH_DIR/mqbench.XXXXXX")
# A copy of the binaries, so that a rebuild during the run cannot change what is measured.
mkdir -p "$WORK/bin"
cp target/release/mqnode target/release/mqctl target/release/examples/rtt_probe "$WORK/bin/"
MQNODE=$WORK/bin/mqnode
MQCTL=$WORK/bin/mqctl
RESULTS=$WORK/results.tsv
: >"$RESULTS"
PROBLEMS=0
log "working in $WORK ($(df -h --output=source,fstype "$WORK" | tail -1 | tr -s ' '))"

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }

# ---- the disk: how long one durable 1 KiB append takes ---------------------------------------

fsync_probe() {
  # 2,000 appends of 1 KiB, each written with O_DSYNC (a write plus fdatasync).
  local out secs
  out=$(dd if=/dev/zero of="$WORK/fsync-probe" bs=1024 count=2000 oflag=dsync 2>&1) || true
  rm -f "$WORK/fsync-probe"
  secs=$(sed -n 's/.*copied, \([0-9.e-]*\) s.*/\1/p' <<<"$out")
  awk -v s="$secs" 'BEGIN { printf "%.3f", s * 1000 / 2000 }'
}
# The same 2,000 writes in place, over a file already written with zeros: what a sync costs
# mqnode's journal, which is preallocated and written in place (the append above also syncs
# the file's new size).
fsync_in_place_probe() {
  local out secs
  dd if=/dev/zero of="$WORK/fsync-probe" bs=1024 count=4096 conv=fsync 2>/dev/null || true
  out=$(dd if=/dev/zero of="$WORK/fsync-probe" bs=1024 count=2000 oflag=dsync conv=notrunc 2>&1) || true
  rm -f "$WORK/fsync-probe"
  secs=$(sed -n 's/.*copied, \([0-9.e-]*\) s.*/\1/p' <<<"$out")
  awk -v s="$secs" 'BEGIN { printf "%.3f", s * 1000 / 2000 }'
}
FSYNC_MS=$(fsync_probe)
FSYNC_IN_PLACE_MS=$(fsync_in_place_probe)
log "fdatasync of a 1 KiB append: $FSYNC_MS ms; written in place: $FSYNC_IN_PLACE_MS ms (means of 2000)"

# ---- the network: one request/response round trip between two processes, no broker --------

# The median over three runs of the mean of 20,000 round trips (1,100-byte request, 40-byte
# answer: a SEND of 1 KiB and its RECEIPT). A receipted producer waits for one of these per
# message on top of the broker's own work.
rtt_probe() {
  local i
  for i in 1 2 3; do
    "$WORK/bin/rtt_probe" 20000 1100 40 | awk '$1 == "rtt_us" { print $3 }'
  done | sort -n | sed -n 2p
}
RTT_US=$(rtt_probe)
[[ -n "$RTT_US" ]] || die "the loopback round-trip probe failed"
log "loopback TCP round trip between two processes (no broker): $RTT_US µs (median of 3 means of 20,000)"

# ---- brokers -------------------------------------------------------------------------------

# start_mqnode NAME PORT DATA [mqnode args...]: starts it and sets STARTED_PID.
start_mqnode() {
  local name=$1 port=$2 data=$3
  shift 3
  "$MQNODE" --name "$name" --data "$data" --transport "tcp://127.0.0.1:$port" \
    --admin "127.0.0.1:$((port + 1000))" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

# start_activemq NAME STOMP_PORT KAHADB [OPENWIRE_PORT] [NETWORK_URI]: as the Debian launcher
# (/usr/bin/activemq) runs it, in the foreground, with this script's activemq.xml (and
# AMQ_KAHADB_OPTS, extra attributes of its kahaDB element, when set).
start_activemq() {
  local name=$1 port=$2 kahadb=$3 openwire=${4:-} network=${5:-}
  local base=$WORK/$name
  mkdir -p "$base/conf" "$base/data" "$base/tmp"
  cp "$AMQ_LOG4J" "$base/conf/log4j2.properties"
  local ow_line="" net_line=""
  [[ -n "$openwire" ]] && ow_line="      <transportConnector name=\"openwire\" uri=\"tcp://127.0.0.1:$openwire\"/>"
  [[ -n "$network" ]] && net_line="    <networkConnectors><networkConnector uri=\"$network\"/></networkConnectors>"
  sed -e "s|@NAME@|$name|" -e "s|@KAHADB@|$kahadb|" -e "s|@KAHADB_OPTS@|${AMQ_KAHADB_OPTS:-}|" \
    -e "s|@STOMP_PORT@|$port|" \
    -e "s|@OPENWIRE@|$ow_line|" -e "s|@NETWORK@|$net_line|" "$TEMPLATE" >"$base/conf/activemq.xml"
  # JVM options: Debian's /usr/share/activemq/activemq-options and /usr/bin/activemq.
  "$JAVA" -Xms512M -Xmx512M -Dorg.apache.activemq.UseDedicatedTaskRunner=true \
    -Djava.awt.headless=true -Djava.io.tmpdir="$base/tmp" \
    --add-reads=java.xml=java.logging \
    --add-opens java.base/java.security=ALL-UNNAMED --add-opens java.base/java.net=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
    --add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
    --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
    --add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED \
    --add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED \
    --add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED \
    --add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED \
    --add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED \
    -Dactivemq.classpath="$base/conf:" -Dactivemq.home="$AMQ_HOME" -Dactivemq.base="$base" \
    -Dactivemq.conf="$base/conf" -Dactivemq.data="$base/data" \
    -jar "$AMQ_HOME/bin/activemq.jar" start "xbean:file:$base/conf/activemq.xml" \
    >"$base/console.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}

# start_kind KIND NAME PORT DATA: start_mqnode or start_activemq, as KIND says.
start_kind() {
  local kind=$1
  shift
  if [[ $kind == mqnode ]]; then start_mqnode "$@"; else start_activemq "$@"; fi
}

# wait_log SECS PATTERN FILE...: polls until one of the files matches PATTERN (grep, any case),
# for SECS at the most.
wait_log() {
  local tries=$(($1 * 20)) pattern=$2 i
  shift 2
  for ((i = 0; i < tries; i++)); do
    grep -qi "$pattern" "$@" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_broker KIND NAME PORT DATA: starts a standalone broker, waits for STOMP, records its
# start-to-serving time and idle RSS; sets BROKER_PID.
start_broker() {
  local kind=$1 name=$2 port=$3 data=$4 t0 t1
  t0=$(now_us)
  start_kind "$kind" "$name" "$port" "$data"
  BROKER_PID=$STARTED_PID
  wait_stomp "$port" 120 "$BROKER_PID" || die "$kind did not serve STOMP on $port (see $WORK)"
  t1=$(now_us)
  START_MS=$(((t1 - t0) / 1000))
  sleep 2
  IDLE_KB=$(rss_kb "$BROKER_PID")
}

# run_bench KEY KIND URL [mqctl bench args...]: one run, its end-to-end rate recorded as KEY.
run_bench() {
  local key=$1 kind=$2 url=$3 out line
  shift 3
  if ! out=$("$MQCTL" bench --url "$url" -o plain "$@" 2>>"$WORK/bench.stderr"); then
    PROBLEMS=$((PROBLEMS + 1))
    log "  $key on $kind: FAILED ($(tail -n1 "$WORK/bench.stderr"))"
  fi
  line=$(tail -n1 <<<"$out")
  [[ -n "$line" && "$line" != broker* ]] || return 0
  local _b msgs send recv p50 p99 max lost dup
  IFS=$'\t' read -r _b msgs send recv p50 p99 max lost dup <<<"$line"
  record "$key" "$kind" "$recv"
  record "$key.p50" "$kind" "$p50"
  record "$key.p99" "$kind" "$p99"
  log "  $key on $kind: $recv msg/s, p50 $p50 ms, p99 $p99 ms, lost $lost, duplicated $dup"
}

# The standalone scenarios of docs/BENCHMARKS.md, against a broker serving STOMP on PORT.
scenarios() {
  local kind=$1 port=$2 round=$3 url="tcp://127.0.0.1:$2"
  local q="bench.r$round"
  run_bench p11r "$kind" "$url" --queue "$q.p11r" --warmup "$WARMUP" --messages "$N_P11R" \
    --persistent --receipts each
  run_bench p44r "$kind" "$url" --queue "$q.p44r" --warmup "$WARMUP" --messages "$N_P44R" \
    --persistent --receipts each --producers 4 --consumers 4
  run_bench p11n "$kind" "$url" --queue "$q.p11n" --warmup "$WARMUP" --messages "$N_P11N" \
    --persistent
  run_bench n11 "$kind" "$url" --queue "$q.n11" --warmup "$WARMUP" --messages "$N_N11" \
    --non-persistent
  # Fixed load, for latency: half of what the slower broker does at 1+1 with receipts.
  run_bench lat "$kind" "$url" --queue "$q.lat" --warmup "$WARMUP" --duration 5 --rate 500 \
    --persistent --receipts each
}

one_broker_round() {
  local kind=$1 round=$2 port=$BASE_PORT
  log "round $round: $kind"
  start_broker "$kind" "$kind-r$round" "$port" "$WORK/$kind-r$round.data"
  record start_ms "$kind" "$START_MS"
  record idle_rss_mb "$kind" "$(awk -v k="$IDLE_KB" 'BEGIN { printf "%.1f", k / 1024 }')"
  log "  started in $START_MS ms, idle RSS $IDLE_KB kB"
  scenarios "$kind" "$port" "$round"
  record loaded_rss_mb "$kind" "$(awk -v k="$(hwm_kb "$BROKER_PID")" 'BEGIN { printf "%.1f", k / 1024 }')"
  stop "$BROKER_PID"
  rm -rf "$WORK/$kind-r$round.data" "$WORK/$kind-r$round"
}

# Produce on one broker, consume on another, through one network connector.
bridge_round() {
  local kind=$1 round=$2 pa=$((BASE_PORT + 10)) pb=$((BASE_PORT + 20)) a b
  log "round $round: $kind, through a bridge"
  if [[ $kind == mqnode ]]; then
    start_mqnode "bra-r$round" "$pa" "$WORK/bra-r$round.data" --network "static:(tcp://127.0.0.1:$pb)"
    a=$STARTED_PID
    start_mqnode "brb-r$round" "$pb" "$WORK/brb-r$round.data"
    b=$STARTED_PID
  else
    start_activemq "bra-r$round" "$pa" "$WORK/bra-r$round/kahadb" "" \
      "static:(tcp://127.0.0.1:$((pb + 1)))"
    a=$STARTED_PID
    start_activemq "brb-r$round" "$pb" "$WORK/brb-r$round/kahadb" "$((pb + 1))"
    b=$STARTED_PID
  fi
  wait_stomp "$pa" 120 "$a" && wait_stomp "$pb" 120 "$b" || die "$kind bridge pair did not start"
  local a_url="tcp://127.0.0.1:$pa" b_url="tcp://127.0.0.1:$pb"
  run_bench brp "$kind" "$a_url" --consume-url "$b_url" --queue "br.r$round.p" --warmup "$WARMUP" \
    --messages "$N_BRP" --persistent --receipts each
  run_bench brn "$kind" "$a_url" --consume-url "$b_url" --queue "br.r$round.n" --warmup "$WARMUP" \
    --messages "$N_BRN" --non-persistent
  stop "$a"
  stop "$b"
  rm -rf "$WORK"/bra-r"$round"* "$WORK"/brb-r"$round"*
}

# Two brokers on one store; kill -9 the master; time until the other serves STOMP.
failover_round() {
  local kind=$1 round=$2 p1=$((BASE_PORT + 30)) p2=$((BASE_PORT + 40)) m s t0 t1
  local store=$WORK/ha-r$round.store
  # How long the master may take to serve, and how the slave says that it waits for the lock.
  local start_secs=60 waiting='"role":"slave"' slave_logs=("$WORK/has-r$round.out")
  if [[ $kind == activemq ]]; then
    start_secs=120 waiting='slave mode\|waiting a lock\|is locked'
    slave_logs=("$WORK/has-r$round/console.log" "$WORK/has-r$round/data/activemq.log")
  fi
  log "round $round: $kind, shared-store failover"
  start_kind "$kind" "ham-r$round" "$p1" "$store"
  m=$STARTED_PID
  wait_stomp "$p1" "$start_secs" "$m" || die "$kind master did not start"
  start_kind "$kind" "has-r$round" "$p2" "$store"
  s=$STARTED_PID
  wait_log $((start_secs / 2)) "$waiting" "${slave_logs[@]}" || true
  sleep 1
  t0=$(now_us)
  kill9 "$m"
  if wait_stomp "$p2" 120 "$s"; then
    t1=$(now_us)
    record failover_ms "$kind" $(((t1 - t0) / 1000))
    log "  kill -9 to STOMP CONNECTED on the slave: $(((t1 - t0) / 1000)) ms"
  else
    PROBLEMS=$((PROBLEMS + 1))
    log "  the $kind slave never served STOMP"
  fi
  stop "$s"
  rm -rf "$store" "$WORK"/ham-r"$round"* "$WORK"/has-r"$round"*
}

# ---- the rounds ------------------------------------------------------------------------------

for ((round = 1; round <= ROUNDS; round++)); do
  [[ $ONLY == backlog || $ONLY == replicated ]] && break
  if ((round % 2)); then order=(mqnode activemq); else order=(activemq mqnode); fi
  for kind in "${order[@]}"; do one_broker_round "$kind" "$round"; done
  for kind in "${order[@]}"; do bridge_round "$kind" "$round"; done
  for kind in "${order[@]}"; do failover_round "$kind" "$round"; done
done

# ---- 1,000,000 messages backlogged ---------------------------------------------------------

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# receipted_runs PREFIX KIND URL: three times the persistent runs with a receipt per message,
# 4+4 and 1+1, recorded as PREFIX_p44r and PREFIX_p11r, and the non-persistent 1+1 with a
# receipt per message (PREFIX_n11r: the client's round trip without a sync).
receipted_runs() {
  local prefix=$1 kind=$2 url=$3 r
  for r in 1 2 3; do
    run_bench "${prefix}_p44r" "$kind" "$url" --queue "$prefix.r$r.p44r" --warmup "$WARMUP" \
      --messages "$N_P44R" --persistent --receipts each --producers 4 --consumers 4
    run_bench "${prefix}_p11r" "$kind" "$url" --queue "$prefix.r$r.p11r" --warmup "$WARMUP" \
      --messages "$N_P11R" --persistent --receipts each
    run_bench "${prefix}_n11r" "$kind" "$url" --queue "$prefix.r$r.n11r" --warmup "$WARMUP" \
      --messages "$N_P11R" --non-persistent --receipts each
  done
}

backlog() {
  local kind=$1
  local port=$BASE_PORT url="tcp://127.0.0.1:$BASE_PORT" data=$WORK/$kind-backlog.data
  log "$kind: preloading $BACKLOG persistent 1 KiB messages"
  start_broker "$kind" "$kind-backlog" "$port" "$data"
  local t0 t1
  # The same runs on the empty broker first: the backlogged figures are compared with these.
  receipted_runs em "$kind" "$url"
  t0=$(now_us)
  # Without receipts (each producer's DISCONNECT receipt still confirms it was all read).
  "$MQCTL" bench --url "$url" -o plain --queue backlog --messages "$BACKLOG" --consumers 0 \
    --producers 4 --persistent >/dev/null 2>>"$WORK/bench.stderr" ||
    { PROBLEMS=$((PROBLEMS + 1)); log "  preload failed"; }
  t1=$(now_us)
  record preload_rate "$kind" "$(awk -v n="$BACKLOG" -v us=$((t1 - t0)) 'BEGIN { printf "%.0f", n * 1e6 / us }')"
  record bl_fill_rss_mb "$kind" "$(mb "$(rss_kb "$BROKER_PID")")"
  record bl_fill_hwm_mb "$kind" "$(mb "$(hwm_kb "$BROKER_PID")")"
  log "  after the preload: RSS $(rss_kb "$BROKER_PID") kB, peak $(hwm_kb "$BROKER_PID") kB"
  receipted_runs bl "$kind" "$url"
  # A crash with the backlog in the store, and the restart on the same data.
  kill9 "$BROKER_PID"
  start_broker "$kind" "$kind-backlog" "$port" "$data"
  record bl_start_ms "$kind" "$START_MS"
  record bl_rss_mb "$kind" "$(mb "$IDLE_KB")"
  log "  restart after kill -9 with the backlog: serving after $START_MS ms, RSS $IDLE_KB kB"
  # Drain it all with one consumer, then see what memory is given back.
  run_bench bl_drain "$kind" "$url" --queue backlog --producers 0 --consumers 1 \
    --messages "$BACKLOG" --persistent
  record bl_drain_hwm_mb "$kind" "$(mb "$(hwm_kb "$BROKER_PID")")"
  sleep 5
  record bl_drained_rss_mb "$kind" "$(mb "$(rss_kb "$BROKER_PID")")"
  log "  after the drain: RSS $(rss_kb "$BROKER_PID") kB, peak $(hwm_kb "$BROKER_PID") kB"
  stop "$BROKER_PID"
  rm -rf "$data" "$WORK/$kind-backlog"
}
if ((BACKLOG > 0)); then
  for kind in $KINDS; do backlog "$kind"; done
fi

# ---- replicated groups (ONLY=replicated) ------------------------------------------------------
# A local ZooKeeper (Debian's package, standalone, loopback), then for each `sync` mode a group
# of three `--ha replicated` members on loopback, the receipted 1+1 and 4+4 runs against its
# master, and one broker of each kind alone for comparison. Then kill -9 of the master,
# TAKEOVERS times (zk-session-timeout 1000 ms), to STOMP CONNECTED on the member that takes
# over, and the catch-up of a replica that was down while messages flowed.

TAKEOVERS=${TAKEOVERS:-10}
ZK_PORT=$((BASE_PORT + 50))
REP_PIDS=()

start_zookeeper() {
  local dir=$WORK/zookeeper i
  mkdir -p "$dir/data"
  printf '%s\n' "tickTime=100" "dataDir=$dir/data" "clientPort=$ZK_PORT" \
    "clientPortAddress=127.0.0.1" "minSessionTimeout=200" "maxSessionTimeout=60000" \
    "admin.enableServer=false" "4lw.commands.whitelist=ruok" >"$dir/zoo.cfg"
  "$JAVA" -Xmx128m -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true \
    -Dzookeeper.admin.enableServer=false \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
  PIDS+=("$!")
  for ((i = 0; i < 600; i++)); do
    [[ $( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf ruok >&3 && timeout 1 cat <&3) 2>/dev/null) == imok ]] &&
      return 0
    sleep 0.1
  done
  die "ZooKeeper did not start (see $dir/zk.log)"
}

member_port() { echo $((BASE_PORT + 10 + 3 * $1)); }

# start_member MODE I: member I (0-2) of the group for sync MODE, on its own data.
start_member() {
  local mode=$1 i=$2 port
  port=$(member_port "$i")
  [[ -f $WORK/admin.token ]] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/admin.token")
  start_mqnode "rep-$i" "$port" "$WORK/rep-$mode-$i" --admin-token-file "$WORK/admin.token" \
    --ha replicated --replicas 3 \
    --zk-address "127.0.0.1:$ZK_PORT" --zk-path "/mq/bench-$mode" \
    --bind "tcp://127.0.0.1:$((port + 2))" --sync "$mode" --zk-session-timeout 1000
  REP_PIDS[i]=$STARTED_PID
}

# broker_json I: member I's GET /api/v1/broker (empty when it does not answer).
broker_json() {
  curl -s --max-time 1 -H "Authorization: Bearer $(cat "$WORK/admin.token")" \
    "http://127.0.0.1:$(($(member_port "$1") + 1000))/api/v1/broker" || true
}

# settled_master: prints the index of the master once one member is master and sees the other
# two streaming at lag 0 (every member running); waits at most 60 s.
settled_master() {
  local t i
  for ((t = 0; t < 1200; t++)); do
    for i in 0 1 2; do
      if broker_json "$i" | python3 -c '
import json, sys
b = json.load(sys.stdin)
r = b.get("replication") or {}
ok = b.get("role") == "master" and len(r.get("replicas", [])) == 2 and all(
    x["state"] == "streaming" and x["lag_records"] == 0 for x in r["replicas"])
sys.exit(0 if ok else 1)' 2>/dev/null; then
        echo "$i"
        return 0
      fi
    done
    sleep 0.05
  done
  return 1
}

replicated_group() {
  local mode=$1 m r url i
  log "replicated group of 3, sync $mode"
  for i in 0 1 2; do start_member "$mode" "$i"; done
  m=$(settled_master) || die "the $mode group did not settle (see $WORK)"
  url="tcp://127.0.0.1:$(member_port "$m")"
  for ((r = 1; r <= ROUNDS; r++)); do
    run_bench "rep_${mode}_p11r" mqnode "$url" --queue "rep.r$r.p11r" --warmup "$WARMUP" \
      --messages "$N_P11R" --persistent --receipts each
    run_bench "rep_${mode}_p44r" mqnode "$url" --queue "rep.r$r.p44r" --warmup "$WARMUP" \
      --messages "$N_P44R" --persistent --receipts each --producers 4 --consumers 4
  done
  if [[ $mode == quorum_disk ]]; then replicated_faults; fi
  for i in 0 1 2; do stop "${REP_PIDS[i]}"; done
}

# Takeovers and the catch-up of a replica, on the running quorum_disk group.
replicated_faults() {
  local k m t0 t1 i others p served n=20000
  for ((k = 1; k <= TAKEOVERS; k++)); do
    m=$(settled_master) || die "the group did not settle before takeover $k"
    others=()
    for i in 0 1 2; do [[ $i == "$m" ]] || others+=("$(member_port "$i")"); done
    t0=$(now_us)
    kill -9 "${REP_PIDS[m]}"
    served=""
    while [[ -z "$served" ]] && (($(now_us) - t0 < 30000000)); do
      for p in "${others[@]}"; do stomp_connected "$p" && served=$p && break; done
    done
    t1=$(now_us)
    wait "${REP_PIDS[m]}" 2>/dev/null || true
    if [[ -n "$served" ]]; then
      record rep_takeover_ms mqnode $(((t1 - t0) / 1000))
      log "  takeover $k: kill -9 of rep-$m to STOMP CONNECTED on port $served: $(((t1 - t0) / 1000)) ms"
    else
      PROBLEMS=$((PROBLEMS + 1))
      log "  takeover $k: no member served STOMP within 30 s"
    fi
    start_member quorum_disk "$m"
  done
  # A replica down while $n messages are stored, then its catch-up.
  m=$(settled_master) || die "the group did not settle before the catch-up"
  i=$(((m + 1) % 3))
  kill -9 "${REP_PIDS[i]}"
  wait "${REP_PIDS[i]}" 2>/dev/null || true
  "$MQCTL" bench --url "tcp://127.0.0.1:$(member_port "$m")" -o plain --queue rep.catchup \
    --messages "$n" --consumers 0 --producers 4 --persistent >/dev/null 2>>"$WORK/bench.stderr" ||
    PROBLEMS=$((PROBLEMS + 1))
  t0=$(now_us)
  start_member quorum_disk "$i"
  if settled_master >/dev/null; then
    t1=$(now_us)
    record rep_catchup mqnode "$(awk -v n="$n" -v us=$((t1 - t0)) 'BEGIN { printf "%.0f", n * 1e6 / us }')"
    log "  a replica down while $n messages were stored: start to caught up in $(((t1 - t0) / 1000)) ms"
  else
    PROBLEMS=$((PROBLEMS + 1))
    log "  the replica did not catch up"
  fi
}

# alone KIND NAME KEY: KIND as one broker named NAME, its receipted 1+1 and 4+4 rounds recorded
# as KEY_p11r and KEY_p44r; stopped and removed after.
alone() {
  local kind=$1 name=$2 key=$3 r url="tcp://127.0.0.1:$BASE_PORT"
  start_broker "$kind" "$name" "$BASE_PORT" "$WORK/$name.data"
  for ((r = 1; r <= ROUNDS; r++)); do
    run_bench "${key}_p11r" "$kind" "$url" --queue "$name.r$r.p11r" --warmup "$WARMUP" \
      --messages "$N_P11R" --persistent --receipts each
    run_bench "${key}_p44r" "$kind" "$url" --queue "$name.r$r.p44r" --warmup "$WARMUP" \
      --messages "$N_P44R" --persistent --receipts each --producers 4 --consumers 4
  done
  stop "$BROKER_PID"
  rm -rf "$WORK/$name.data" "${WORK:?}/$name"
}

replicated() {
  local kind mode
  start_zookeeper
  for kind in mqnode activemq; do
    log "$kind alone, for comparison"
    alone "$kind" "$kind-single" single
  done
  # ActiveMQ's default (concurrentStoreAndDispatchQueues) stores a queue's message while it
  # dispatches it, and skips the journal write of one its consumer acknowledges first, its
  # receipt included: its 4+4 rises as consumers keep up. With the option off it syncs every
  # message before its receipt, as each replicated group below does: its own local sync.
  log "activemq alone, concurrentStoreAndDispatchQueues=false, for comparison"
  AMQ_KAHADB_OPTS=' concurrentStoreAndDispatchQueues="false"' alone activemq activemq-strict strict
  for mode in quorum_disk quorum_mem local_disk; do
    replicated_group "$mode"
  done
}
if [[ $ONLY == replicated ]]; then replicated; fi

# ---- scale figures, mqnode only -------------------------------------------------------------

scale() {
  local port=$BASE_PORT url="tcp://127.0.0.1:$BASE_PORT" before after hold_pid i
  log "scale: mqnode, 5,000 idle connections"
  start_broker mqnode mqnode-scale "$port" "$WORK/scale.data"
  before=$(rss_kb "$BROKER_PID")
  "$MQCTL" bench --url "$url" --idle-connections 5000 --hold 8 >/dev/null 2>"$WORK/idle.stderr" &
  hold_pid=$!
  PIDS+=("$hold_pid")
  wait_log 60 opened "$WORK/idle.stderr" || true
  sleep 1
  after=$(rss_kb "$BROKER_PID")
  wait "$hold_pid" || PROBLEMS=$((PROBLEMS + 1))
  untrack "$hold_pid"
  record conn_kb mqnode "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.1f", (a - b) / 5000 }')"
  record conn_rss_mb mqnode "$(awk -v k="$after" 'BEGIN { printf "%.1f", k / 1024 }')"

  log "scale: mqnode, 10,000 queues"
  run_bench q10k mqnode "$url" --queue many --queues 10000 --messages 20000 --persistent \
    --receipts each --producers 4 --consumers 4
  record q10k_rss_mb mqnode "$(awk -v k="$(rss_kb "$BROKER_PID")" 'BEGIN { printf "%.1f", k / 1024 }')"

  # The same headers in both runs, so that the selector is the only difference.
  log "scale: mqnode, what a 3-clause selector costs (non-persistent 1+1)"
  local hdrs=(--header region=eu --header amount=250 --header kind=a)
  for ((i = 1; i <= ROUNDS; i++)); do
    run_bench sel_none mqnode "$url" --queue "sel.none.$i" --warmup "$WARMUP" \
      --messages "$N_N11" --non-persistent "${hdrs[@]}"
    run_bench sel_3 mqnode "$url" --queue "sel.three.$i" --warmup "$WARMUP" \
      --messages "$N_N11" --non-persistent "${hdrs[@]}" \
      --selector "region = 'eu' AND amount > 100 AND kind IN ('a', 'b')"
  done
  stop "$BROKER_PID"

  log "scale: a 5-node mesh with mqctl cluster create"
  local home=$WORK/mqctl-home t0 t1
  mkdir -p "$home"
  t0=$(now_us)
  if MQCTL_HOME=$home "$MQCTL" cluster create benchmesh --nodes 5 --topology mesh \
    --base-port $((BASE_PORT + 100)) --mqnode "$MQNODE" >/dev/null 2>>"$WORK/bench.stderr"; then
    t1=$(now_us)
    record mesh5_ms mqnode $(((t1 - t0) / 1000))
    log "  5-node mesh ready in $(((t1 - t0) / 1000)) ms"
  else
    PROBLEMS=$((PROBLEMS + 1))
    log "  cluster create failed"
  fi
  MQCTL_HOME=$home "$MQCTL" cluster destroy benchmesh --yes >/dev/null 2>&1 || true
}
if [[ $SCALE == 1 ]]; then scale; fi

# ---- the table -------------------------------------------------------------------------------

median() { # KEY KIND
  awk -F'\t' -v k="$1" -v w="$2" '$1 == k && $2 == w { print $3 }' "$RESULTS" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
                               else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

row() { # LABEL KEY UNIT [ACTIVEMQ_KEY]: mqnode's KEY against ActiveMQ's (by default the same)
  local m a
  m=$(median "$2" mqnode)
  a=$(median "${4:-$2}" activemq)
  awk -v l="$1" -v m="$m" -v a="$a" -v u="$3" 'BEGIN {
    r = (m != "-" && a != "-" && a + 0 != 0) ? sprintf("%.2f", m / a) : "-";
    fm = (m == "-") ? "-" : (m + 0 >= 100 ? sprintf("%.0f", m) : sprintf("%.2f", m));
    fa = (a == "-") ? "-" : (a + 0 >= 100 ? sprintf("%.0f", a) : sprintf("%.2f", a));
    printf "| %-58s | %6s | %12s | %12s | %6s |\n", l, u, fm, fa, r }'
}

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "mqnode vs ActiveMQ $(dpkg-query -W -f '${Version}' activemq 2>/dev/null || echo '?'), medians of $ROUNDS rounds"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, fdatasync of a 1 KiB append: $FSYNC_MS ms, in place: $FSYNC_IN_PLACE_MS ms"
echo
printf '| %-58s | %6s | %12s | %12s | %6s |\n' figure unit mqnode ActiveMQ ratio
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "--------" "--------------" "--------------" "--------"
if [[ $ONLY == replicated ]]; then
  row "persistent 1+1 receipts, one broker alone" single_p11r msg/s
  row "persistent 4+4 receipts, one broker alone" single_p44r msg/s
  for mode in quorum_disk quorum_mem local_disk; do
    # ActiveMQ's single-broker figures stand beside each replicated row.
    row "persistent 1+1 receipts, replicated group of 3, sync $mode" "rep_${mode}_p11r" msg/s single_p11r
    row "persistent 4+4 receipts, replicated group of 3, sync $mode" "rep_${mode}_p44r" msg/s single_p44r
  done
  echo "ActiveMQ alone with concurrentStoreAndDispatchQueues=false (every message synced before its receipt):"
  for mode in quorum_disk quorum_mem local_disk; do
    row "persistent 1+1 receipts, group of 3, sync $mode" "rep_${mode}_p11r" msg/s strict_p11r
    row "persistent 4+4 receipts, group of 3, sync $mode" "rep_${mode}_p44r" msg/s strict_p44r
  done
  row "kill -9 of the replicated master to STOMP on the next (median of $TAKEOVERS)" rep_takeover_ms ms
  row "catch-up of a replica that was down (messages per second)" rep_catchup msg/s
elif [[ $ONLY != backlog ]]; then
  row "persistent 1 KiB, 1+1, receipt per message" p11r msg/s
  row "persistent 1 KiB, 4+4, receipt per message" p44r msg/s
  row "persistent 1 KiB, 1+1, no receipts" p11n msg/s
  row "non-persistent 1 KiB, 1+1" n11 msg/s
  row "through one bridge, persistent 1+1, receipts" brp msg/s
  row "through one bridge, non-persistent 1+1" brn msg/s
  row "latency at 500 msg/s, persistent 1+1 receipts: p50" lat.p50 ms
  row "latency at 500 msg/s, persistent 1+1 receipts: p99" lat.p99 ms
  row "latency, persistent 1+1 receipts (as fast as possible): p50" p11r.p50 ms
  row "latency, non-persistent 1+1 (as fast as possible): p99" n11.p99 ms
  row "kill -9 of the master to STOMP on the slave" failover_ms ms
  row "process start to serving STOMP" start_ms ms
  row "resident memory, idle" idle_rss_mb MiB
  row "resident memory, peak under the scenarios above" loaded_rss_mb MiB
fi
if ((BACKLOG > 0)); then
  row "preload of the backlog, persistent, 4 producers, no receipts" preload_rate msg/s
  row "resident memory with $BACKLOG backlogged" bl_fill_rss_mb MiB
  row "resident memory, peak during the preload" bl_fill_hwm_mb MiB
  row "persistent 4+4 receipts, empty broker" em_p44r msg/s
  row "persistent 4+4 receipts, $BACKLOG backlogged on another queue" bl_p44r msg/s
  row "persistent 1+1 receipts, empty broker" em_p11r msg/s
  row "persistent 1+1 receipts, $BACKLOG backlogged on another queue" bl_p11r msg/s
  row "non-persistent 1+1 receipts, empty broker (the round trip)" em_n11r msg/s
  row "kill -9, restart to serving with $BACKLOG stored" bl_start_ms ms
  row "resident memory after that restart" bl_rss_mb MiB
  row "drain of the backlog, 1 consumer" bl_drain msg/s
  row "resident memory, peak during the drain" bl_drain_hwm_mb MiB
  row "resident memory 5 s after the drain" bl_drained_rss_mb MiB
  # The disk's sync time drifts by as much as a third within minutes: probe it again now,
  # after the runs, so that a reader sees how far the figure below may be off.
  echo "in-place sync: $FSYNC_IN_PLACE_MS ms before the brokers, $(fsync_in_place_probe) ms after them (the lines below use the first)"
  # What a strictly sequential client can get at best: one round trip plus one sync.
  awk -v p="$(median em_p11r mqnode)" -v n="$(median em_n11r mqnode)" -v s="$FSYNC_IN_PLACE_MS" 'BEGIN {
    if (p == "-" || n == "-" || s + 0 == 0) exit
    c = 1 / (1 / n + s / 1000)
    printf "mqnode 1+1 receipts: %.0f msg/s = %.0f %% of the in-place sync rate (%.0f/s); a round trip plus one sync per message allows %.0f/s (%.0f %% of it reached)\n",
      p, 100 * p * s / 1000, 1000 / s, c, 100 * p / c }'
  # The same bounds from the bare loopback round trip (no broker at all): what no client and
  # broker that sleep while they wait can pass here while each RECEIPT waits for a sync.
  awk -v p="$(median em_p11r mqnode)" -v q="$(median em_p44r mqnode)" -v a="$(median em_p44r activemq)" \
    -v r="$RTT_US" -v s="$FSYNC_IN_PLACE_MS" 'BEGIN {
    if (p == "-" || q == "-" || r + 0 == 0 || s + 0 == 0) exit
    c = 1e6 / (r + s * 1000)
    printf "floor: a bare loopback round trip (%.1f µs) plus one sync allows a 1+1 %.0f msg/s (%.0f %% of the sync rate; mqnode reached %.0f %% of it) and a 4+4 %.0f msg/s (4 producers each waiting; mqnode reached %.0f %% of it",
      r, c, 100 * c * s / 1000, 100 * p / c, 4 * c, 100 * q / (4 * c)
    if (a != "-" && a + 0 > 0) printf "; it is %.2fx ActiveMQ'"'"'s 4+4 here", 4 * c / a
    printf ")\n" }'
fi
if [[ $SCALE == 1 ]]; then
  echo
  echo "mqnode scale figures"
  row "memory per idle STOMP connection (5,000 open)" conn_kb kB
  row "resident memory with 5,000 idle connections" conn_rss_mb MiB
  row "persistent 4+4 receipts over 10,000 queues" q10k msg/s
  row "resident memory after that" q10k_rss_mb MiB
  row "non-persistent 1+1, three headers, no selector" sel_none msg/s
  row "the same with a 3-clause selector on the consumer" sel_3 msg/s
  row "mqctl cluster create, 5-node mesh, to ready" mesh5_ms ms
fi
echo
if ((PROBLEMS > 0)); then
  echo "$PROBLEMS run(s) failed or lost/duplicated messages; see the log above."
  exit 1
fi
