#!/usr/bin/env bash
# hbase-ingest.sh: ingest rate into HBase against Pebble, same input, same
# run (issue 14's HBase benchmark).
#
# The big input (bench/mkbig.sh; PACKETS=N keeps its first N packets,
# default all) is streamed by tapir-sensor -r into a tapir-collector on
# the embedded Pebble store, then into a new collector on the HBase of
# TAPIR_HBASE_ZK (a new table each run, dropped at the end), both on 127.0.0.1 in plaintext.
# Each phase ends when the sensor has drained (every batch acknowledged:
# durable in the store). For each: wall time of the sensor, CPU seconds of
# the sensor, of the collector and (HBase) of the HBase JVM, flows/s
# (flow records stored / wall) and block MB/s (encoded block bytes stored
# / wall), from the collector's /metrics. HBase must stay up: the pid of
# the JVM (TAPIR_SERVICES_DIR/hbase/pid as deploy/hbase/start.sh writes
# it) must not change and its log must gain no "ABORTING" nor
# OutOfMemoryError; its heap (JMX) and RSS are printed after the phase.
#
# Environment: TAPIR_HBASE_ZK (127.0.0.1:2181), TAPIR_HBASE_INFO_PORT
# (16010: the master's web port, for the heap), TAPIR_SERVICES_DIR
# (.cache/services), PACKETS (all), HBASE_CONCURRENCY (the collector's
# store.hbase.concurrency; default: the built-in default), HBASE_OPTS
# (more store.hbase fields, YAML flow style: "rpc_queue_size: 200"), RESULTS_MD
# (bench/results/hbase-ingest.md), KEEP=1 keeps the work directory. Exits
# 1 when HBase restarted or aborted, or a sensor logged an error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
zk=${TAPIR_HBASE_ZK:-127.0.0.1:2181}
info=${TAPIR_HBASE_INFO_PORT:-16010}
svc=${TAPIR_SERVICES_DIR:-$root/.cache/services}/hbase
results_md=${RESULTS_MD:-$root/bench/results/hbase-ingest.md}
port_ingest=${PORT_INGEST:-24840}
port_api=${PORT_API:-28543}
port_metrics=${PORT_METRICS:-29190}

log() { echo "== $*" >&2; }

[[ -f $svc/pid ]] && kill -0 "$(cat "$svc/pid")" 2>/dev/null ||
  { log "no HBase running under $svc (deploy/hbase/start.sh)"; exit 1; }
hpid=$(cat "$svc/pid")
hlog=$svc/hbase.log

big=$(./bench/mkbig.sh)
mkdir -p "$root/.cache/bench"
work=$(mktemp -d "$root/.cache/bench/hbase-ingest.XXXXXX")
collector=
cleanup() {
  [[ -n $collector ]] && kill "$collector" 2>/dev/null && wait "$collector" 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bin/" ./cmd/tapir-sensor ./cmd/tapir-collector ./bench/benchtool

input=$big
if [[ -n ${PACKETS:-} ]]; then
  input=$work/input.pcap
  editcap -r "$big" "$input" "1-$PACKETS"
fi
pkts=$(capinfos -T -r -c "$input" | cut -f2)
cat "$input" >/dev/null # page cache
log "input: $input, $pkts packets"

# cpu_of PID: user+sys seconds of a running process.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
metric() { # NAME: sum of a collector counter's samples
  curl -s "http://127.0.0.1:$port_metrics/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.0f", s}'
}

# phase NAME STORE-YAML: one collector, one sensor run; prints a result line.
phase() {
  local name=$1 store=$2
  cat >"$work/$name.yaml" <<YAML
store: $store
retention: {max_age: 0s, interval: 1h}
ingest: {listen: 127.0.0.1:$port_ingest, tls: {insecure: true}}
api: {listen: 127.0.0.1:$port_api, tls: {insecure: true}}
metrics: {listen: "127.0.0.1:$port_metrics"}
YAML
  "$work/bin/tapir-collector" --config "$work/$name.yaml" --log-level warn 2>"$work/collector-$name.log" &
  collector=$!
  for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port_metrics/metrics" && break; sleep 0.1; done
  local h0=0 t0 t1
  [[ $name == hbase ]] && h0=$(cpu_of "$hpid")
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/sensor-$name.time" "$work/bin/tapir-sensor" -r "$input" --sensor-id "bench-$name" \
    --collector 127.0.0.1:$port_ingest --insecure --spool-dir "$work/spool-$name" \
    --drain-timeout 30m --log-level warn 2>"$work/sensor-$name.log" &
  local sensor=$!
  # If HBase dies the collector stops acknowledging and the sensor would
  # wait for its drain timeout: stop it then, and fail.
  while [[ $name == hbase ]] && kill -0 "$sensor" 2>/dev/null; do
    if ! kill -0 "$hpid" 2>/dev/null; then
      log "HBase (pid $hpid) died during the run:"
      grep -m3 -E 'ABORTING|OutOfMemoryError' "$hlog" >&2 || true
      kill "$sensor"; exit 1
    fi
    sleep 0.05
  done
  wait "$sensor"
  t1=$(date +%s.%N)
  if grep -q 'level=ERROR' "$work/sensor-$name.log"; then
    log "sensor ($name) logged errors:"; tail -5 "$work/sensor-$name.log" >&2; exit 1
  fi
  local ccpu h1=0 wall recs bytes blocks scpu
  ccpu=$(cpu_of "$collector")
  [[ $name == hbase ]] && h1=$(cpu_of "$hpid")
  recs=$(metric tapir_collector_ingest_records_total)
  bytes=$(metric tapir_collector_ingest_block_bytes_total)
  blocks=$(metric tapir_collector_ingest_blocks_total)
  kill "$collector" && wait "$collector" 2>/dev/null || true
  collector=
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
  scpu=$(awk '{printf "%.2f", $1 + $2}' "$work/sensor-$name.time")
  awk -v n="$name" -v w="$wall" -v r="$recs" -v by="$bytes" -v bl="$blocks" -v s="$scpu" -v c="$ccpu" -v h="$(awk -v a="$h0" -v b="$h1" 'BEGIN {printf "%.2f", b - a}')" \
    'BEGIN {printf "%s %s %.0f %.2f %s %s %s %s %s %s\n", n, w, r / w, by / 1e6 / w, s, c, h, r, by, bl}'
}

log "pebble ..."
read -r _ pw pfs pmbs pscpu pccpu _ precs pbytes pblocks < <(phase pebble "{dir: $work/store}")
log "pebble: ${pw} s wall, $pfs flows/s, $pmbs MB/s of blocks ($pblocks blocks, $precs records), CPU sensor $pscpu s, collector $pccpu s"

aborts0=$(grep -c -E 'ABORTING|OutOfMemoryError' "$hlog" || true)
table=ingest_$(date +%s)
conc=
[[ -n ${HBASE_CONCURRENCY:-} ]] && conc=", concurrency: $HBASE_CONCURRENCY"
[[ -n ${HBASE_OPTS:-} ]] && conc="$conc, $HBASE_OPTS"
log "hbase (table $table) ..."
read -r _ hw hfs hmbs hscpu hccpu hjcpu hrecs hbytes hblocks < <(phase hbase "{backend: hbase, hbase: {zookeeper: \"$zk\", table: $table$conc}}")
log "hbase: ${hw} s wall, $hfs flows/s, $hmbs MB/s of blocks ($hblocks blocks, $hrecs records), CPU sensor $hscpu s, collector $hccpu s, HBase JVM $hjcpu s"

"$work/bin/benchtool" hbasedrop -zk "$zk" -table "$table" || log "could not drop table $table"
up=yes
kill -0 "$hpid" 2>/dev/null && [[ $(cat "$svc/pid" 2>/dev/null) == "$hpid" ]] || up="NO (pid $hpid gone)"
aborts=$(( $(grep -c -E 'ABORTING|OutOfMemoryError' "$hlog" || true) - aborts0 ))
rss=$(awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$hpid/status" 2>/dev/null || echo n/a)
heap=$(curl -s -m 5 "http://127.0.0.1:$info/jmx?qry=java.lang:type=Memory" |
  awk -F: '/"used"/ && !u {gsub(/[ ,]/, "", $2); u = $2} /"max"/ && !m {gsub(/[ ,]/, "", $2); m = $2} END {if (u) printf "%d/%d", u / 1048576, m / 1048576; else print "n/a"}')
ratio=$(awk -v a="$hmbs" -v b="$pmbs" 'BEGIN {printf "%.2f", a / b}')
log "HBase/Pebble rate: $ratio; HBase up: $up, aborts/OOM in log: $aborts, JVM heap used/max ${heap} MiB, RSS $rss MiB"

cat >"$results_md" <<MD
# HBase vs Pebble ingest ($(date -u '+%Y-%m-%d %H:%M UTC'))

\`bench/hbase-ingest.sh\`, input $pkts packets ($(basename "$big")${PACKETS:+, first $PACKETS}), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg).

| store | wall s | flows/s | block MB/s | sensor CPU s | collector CPU s | HBase JVM CPU s |
|---|---|---|---|---|---|---|
| Pebble | $pw | $pfs | $pmbs | $pscpu | $pccpu | |
| HBase | $hw | $hfs | $hmbs | $hscpu | $hccpu | $hjcpu |

HBase/Pebble block rate: **$ratio** (target >= 0.5). HBase stayed up: $up; aborts/OOM in its log: $aborts; heap used/max after: $heap MiB; RSS $rss MiB.
MD
log "written $results_md"
[[ $up == yes && $aborts == 0 ]]
