#!/usr/bin/env bash
# Retrieval latency by flow as the store grows, beside tcpdump filtering the
# raw capture for the same flows (issue 3's benchmark).
#
# What is measured: GET /api/v1/pcap?flow=<Community ID> against a
# collector on the embedded Pebble store (127.0.0.1, plaintext, a
# benchmark, not a deployment), from the time the request is sent to the
# last byte of the pcap, by `benchtool retrieve`: a Go client on ONE
# keep-alive connection (so neither a process start nor a TCP handshake
# per request is measured), for SAMPLES flows (default 1000) drawn once,
# with a fixed random source, from every Community ID of the first 1 M
# packets. The same flows are measured at every store size. Each
# measurement is a warm-up pass over the sample (each flow's first
# retrieval, cold block cache: reported on its own) followed by ROUNDS
# (5) timed passes; p50/p99 are nearest-rank percentiles over all timed
# requests (5000: the p99 is the 50th slowest, not the 10th, so one
# scheduler hiccup of this shared machine moves it less).
#
# Store sizes: the first 1 M packets of the big input (bench/mkbig.sh)
# streamed through tapir-sensor into the collector; then the rest of it
# (10 M packets in all); then, with COPIES=N, N-1 more copies of the big
# input with addresses rewritten by tcprewrite (other seeds: new flows),
# so COPIES=10 holds ~100 M packets. Every packet goes through the real
# sensor and ingest path.
#
# Steady state: after each ingest phase, and before measuring, `benchtool
# settle` polls the collector's /metrics until Pebble runs no flush and no
# compaction and the flush/compaction counters have not moved for SETTLE
# (20 s): retrieval is measured on the store as it stays, not while the
# compactions of the last ingest are still rewriting it. The LSM shape
# (read amplification, files per level) and what Pebble did during the
# timed pass (block cache hits/misses, bytes read from files, compactions)
# are printed with each result; the collector's Server-Timing header
# splits each request into store lookup, block scan and the rest.
#
# Finally `tcpdump -r BIG -w /dev/null <filter>` is timed for a few of the
# same flows. The table goes to bench/results/retrieval.md. KEEP=1 keeps
# .cache/bench/retrieval (RETRIEVAL_WORK; the store, ~5 GB at COPIES=10)
# for inspection.
#
# Each timed pass also prints its CPU per request: the client's own
# (benchtool, getrusage) and the collector process's (its /metrics), with
# the Go GC cycles and pauses during the pass and the collector's Go heap.
#
# REUSE=1 (with KEEP=1 before) measures a kept store again without
# ingesting anything: the binaries are rebuilt from this tree, a collector
# is started on RETRIEVAL_WORK's store and the kept sample is measured
# once (label "reuse", printed, not written to the results file).
# PROFILE=1 records the collector with `perf record -g` during each
# measurement (warm-up and timed passes; $work/perf-LABEL.data, read with
# `perf report -i`) and runs it with GODEBUG=gctrace=1 (GC lines in
# $work/collector.log): for finding where time goes, not for the figures
# (perf costs CPU of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export TAPIR_PCAPS=${TAPIR_PCAPS:-$root/../shared/pcaps}
SAMPLES=${SAMPLES:-1000}
SETTLE=${SETTLE:-20s}
ROUNDS=${ROUNDS:-5}
TCPDUMP_FLOWS=${TCPDUMP_FLOWS:-3}
big=$(./bench/mkbig.sh)
work=${RETRIEVAL_WORK:-$root/.cache/bench/retrieval}
REUSE=${REUSE:-0}
PROFILE=${PROFILE:-0}
if [[ $REUSE == 1 ]]; then
  [[ -d $work/store && -s $work/sample ]] || { echo "REUSE=1: no kept store in $work (run with KEEP=1 first)" >&2; exit 1; }
  KEEP=1
else
  rm -rf "$work"
fi
mkdir -p "$work/bin"
# Sensor, collector and benchtool are built from this tree, together (a
# sensor and a collector from different trees may disagree on the block
# format).
go build -o "$work/bin/" ./cmd/tapir-sensor ./cmd/tapir-collector ./bench/benchtool
bt=$work/bin/benchtool
port_ingest=${PORT_INGEST:-24740}
port_api=${PORT_API:-28443}
port_metrics=${PORT_METRICS:-29090}
token=bench-token
printf '"%s":\n  subject: bench\n  roles: [admin]\n' "$(printf %s $token | sha256sum | cut -d' ' -f1)" >"$work/tokens.yaml"
cat >"$work/collector.yaml" <<YAML
store: {dir: $work/store}
retention: {max_age: 0s, interval: 1h}
ingest: {listen: 127.0.0.1:$port_ingest, tls: {insecure: true}}
api: {listen: 127.0.0.1:$port_api, tls: {insecure: true}, tokens_file: $work/tokens.yaml, audit_file: $work/audit.jsonl, audit_sync: false}
metrics: {listen: "127.0.0.1:$port_metrics"}
YAML
collector_godebug=${GODEBUG:-}
if [[ $PROFILE == 1 ]]; then collector_godebug=${collector_godebug:+$collector_godebug,}gctrace=1; fi
GODEBUG=$collector_godebug "$work/bin/tapir-collector" --config "$work/collector.yaml" --log-level warn 2>>"$work/collector.log" &
collector=$!
fresh_sensor= fns=
cleanup() {
  if [[ -n $fresh_sensor ]]; then kill -INT "$fresh_sensor" 2>/dev/null; wait "$fresh_sensor" 2>/dev/null || true; fi
  if [[ -n $fns ]]; then ip netns del "$fns" 2>/dev/null || true; fi
  kill $collector 2>/dev/null; wait $collector 2>/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port_api/" && break; sleep 0.1; done

stream() { # file sensor-id flows-out; fails if the sensor logged an error (a batch dropped)
  /usr/bin/time -f '%e s wall, %U s user, %S s sys' "$work/bin/tapir-sensor" -r "$1" --sensor-id "$2" \
    --collector 127.0.0.1:$port_ingest --insecure --spool-dir "$work/spool-$2" --flows-out "$3" \
    --drain-timeout 10m --log-level warn 2>"$work/sensor-$2.log"
  cat "$work/sensor-$2.log"
  if grep -q 'level=ERROR' "$work/sensor-$2.log"; then echo "sensor $2 logged errors: the store misses data" >&2; exit 1; fi
}

measure() { # label -> prints p50 p99 (ms); details on stderr and in $work/pebble-LABEL
  "$bt" settle -metrics "http://127.0.0.1:$port_metrics/metrics" -quiet "$SETTLE" 2>&1 | tee "$work/pebble-$1" >&2
  curl -s "http://127.0.0.1:$port_metrics/metrics" | grep -E '^tapir_collector_ingest_(batches|blocks|block_bytes|records)_total' |
    tr '\n' ' ' | sed 's/^/stored: /; s/$/\n/' | tee -a "$work/pebble-$1" >&2
  echo "load: average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs before the timed passes" | tee -a "$work/pebble-$1" >&2
  local perf=
  if [[ $PROFILE == 1 ]]; then
    echo "=== measure $1 starts: $(date -u +%T.%N)" >>"$work/collector.log"
    perf record -q -g -F 499 -p "$collector" -o "$work/perf-$1.data" 2>/dev/null &
    perf=$!
  fi
  "$bt" retrieve -api "http://127.0.0.1:$port_api" -token "$token" -ids "$work/sample" \
    -rounds "$ROUNDS" -metrics "http://127.0.0.1:$port_metrics/metrics" -o "$work/lat-$1.tsv" 2> >(tee -a "$work/pebble-$1" >&2)
  if [[ -n $perf ]]; then kill -INT "$perf"; wait "$perf" || true; fi
}

if [[ $REUSE == 1 ]]; then
  read -r p50r p99r s50r s99r f50r f99r < <(measure reuse)
  echo "reuse ($(du -sb "$work/store" | cut -f1) bytes of store): p50 ${p50r} ms, p99 ${p99r} ms, store p50 ${s50r} / p99 ${s99r} ms, first retrieval p50 ${f50r} / p99 ${f99r} ms" >&2
  exit 0
fi

n1=1000000
total=$(capinfos -T -r -c "$big" | cut -f2)
editcap -r "$big" "$work/part1.pcap" "1-$n1"
editcap -r "$big" "$work/part2.pcap" "$((n1 + 1))-$total"

echo "streaming the first $n1 packets ..." >&2
stream "$work/part1.pcap" bench-1 "$work/flows1.json" >&2
grep -o '"community_id":"[^"]*"' "$work/flows1.json" | cut -d'"' -f4 | sort -u >"$work/ids1"
shuf -n "$SAMPLES" --random-source=<(yes) "$work/ids1" >"$work/sample"
SAMPLES=$(wc -l <"$work/sample")
read -r p50a p99a s50a s99a f50a f99a < <(measure 1m)
echo "1M packets: p50 ${p50a} ms, p99 ${p99a} ms, store p99 ${s99a} ms" >&2

echo "streaming the other $((total - n1)) packets ..." >&2
stream "$work/part2.pcap" bench-2 "$work/flows2.json" >&2
read -r p50b p99b s50b s99b f50b f99b < <(measure 10m)
echo "${total} packets: p50 ${p50b} ms, p99 ${p99b} ms" >&2
store_bytes=$(du -sb "$work/store" | cut -f1)

# Optionally grow the store to COPIES x the big input: each copy is the
# big input with addresses rewritten by tcprewrite (another seed), so its
# flows are new ones; the sampled flows are measured again.
# COPY_MINUTES (default 0: none) stops adding copies once the copies have
# taken that long, on a machine too slow or too busy for all of them; the
# table then says how many packets the store holds.
COPIES=${COPIES:-1}
COPY_MINUTES=${COPY_MINUTES:-0}
p50c= p99c= s50c= s99c= f50c= f99c= store_bytes_c=
copies_done=1
if [[ $COPIES -gt 1 ]]; then
  copy_start=$SECONDS
  for c in $(seq 2 "$COPIES"); do
    if [[ $COPY_MINUTES -gt 0 && $((SECONDS - copy_start)) -ge $((COPY_MINUTES * 60)) ]]; then
      echo "COPY_MINUTES=$COPY_MINUTES reached after $((c - 1)) copies: measuring at that size" >&2
      break
    fi
    echo "streaming copy $c of the big input ..." >&2
    tcprewrite --seed="$((1000 + c))" --fixcsum --infile="$big" --outfile="$work/copy.pcap"
    stream "$work/copy.pcap" "bench-c$c" /dev/null >&2
    rm -f "$work/copy.pcap"
    copies_done=$c
  done
  echo "$copies_done copies streamed in $(((SECONDS - copy_start) / 60)) min" >&2
fi
if [[ $copies_done -gt 1 ]]; then
  read -r p50c p99c s50c s99c f50c f99c < <(measure big)
  store_bytes_c=$(du -sb "$work/store" | cut -f1)
  echo "$((total * copies_done)) packets: p50 ${p50c} ms, p99 ${p99c} ms" >&2
fi

# Freshness on the store as it now is (the largest size): a live sensor on
# one end of a veth pair (the other end in a private network namespace)
# streams to the same collector; a ping exchange (zeek/icmp-ping.pcap with
# its addresses rewritten, so that its flow is new to the store) is
# replayed into the veth, and the time from the start of the replay until
# GET /api/v1/pcap?flow=<its Community ID> returns all its packets is the
# freshness (requirement: under 5 s). Needs root, iproute2 and tcpreplay;
# skipped otherwise. FRESH_RUNS (3) replays, each with other addresses.
FRESH_RUNS=${FRESH_RUNS:-3}
fresh_line="freshness: not measured (needs root, ip and tcpreplay)"
ping_pcap=$TAPIR_PCAPS/zeek/icmp-ping.pcap
if [[ ! -s $ping_pcap ]]; then
  fresh_line="freshness: not measured ($ping_pcap missing: set TAPIR_PCAPS)"
elif [[ $(id -u) == 0 ]] && command -v ip >/dev/null && command -v tcpreplay >/dev/null; then
  fns=tfresh$$ fa=tfa$$ fb=tfb$$
  ip netns add "$fns"
  ip link add "$fa" type veth peer name "$fb" netns "$fns"
  ip link set "$fa" up; ip -n "$fns" link set "$fb" up
  "$work/bin/tapir-sensor" -i "$fa" --sensor-id bench-fresh --collector 127.0.0.1:$port_ingest --insecure \
    --spool-dir "$work/spool-fresh" --flows-out /dev/null --log-level info 2>"$work/sensor-fresh.log" &
  fresh_sensor=$!
  for _ in $(seq 200); do grep -q 'connected to collector' "$work/sensor-fresh.log" && break; sleep 0.1; done
  sleep 1 # the capture sockets open once connected
  : >"$work/fresh"
  for r in $(seq "$FRESH_RUNS"); do
    tcprewrite --seed="$((7000 + r))" --fixcsum --infile="$ping_pcap" --outfile="$work/ping-$r.pcap"
    "$work/bin/tapir-sensor" -r "$work/ping-$r.pcap" --flows-out "$work/ping-$r.json" --log-level warn
    read -r cid want < <(jq -r 'select(.network.community_id != null) | "\(.network.community_id) \(.network.packets)"' "$work/ping-$r.json" | head -1)
    t0=$(date +%s.%N)
    ip netns exec "$fns" tcpreplay -q -i "$fb" "$work/ping-$r.pcap" >/dev/null 2>&1
    got=0
    while :; do
      code=$(curl -s -o "$work/fresh.pcap" -w '%{http_code}' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port_api/api/v1/pcap?flow=$(printf %s "$cid" | jq -sRr @uri)")
      if [[ $code == 200 ]]; then got=$(capinfos -T -r -c "$work/fresh.pcap" 2>/dev/null | cut -f2); fi
      [[ ${got:-0} -ge $want ]] && break
      if python3 -c "import sys; sys.exit(0 if float(sys.argv[2]) - float(sys.argv[1]) > 30 else 1)" "$t0" "$(date +%s.%N)"; then
        got=timeout; break
      fi
      sleep 0.05
    done
    t1=$(date +%s.%N)
    if [[ $got == timeout ]]; then echo "timeout" >>"$work/fresh"; else
      python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$t0" "$t1" >>"$work/fresh"; fi
    echo "freshness run $r: flow $cid ($want packets): $(tail -1 "$work/fresh") s" >&2
  done
  kill -INT $fresh_sensor 2>/dev/null; wait $fresh_sensor 2>/dev/null || true
  ip netns del "$fns" 2>/dev/null || true
  fresh_sensor= fns=
  fresh_line="freshness (live sensor on a veth streaming to this collector, store at its largest size): replay of a new ping flow to all its packets retrievable by Community ID: $(paste -sd' ' "$work/fresh" | sed 's/ / s, /g') s over $FRESH_RUNS runs (target < 5 s)."
fi
echo "$fresh_line" >&2

# tcpdump filtering the raw capture for the same flows.
: >"$work/tcpdump"
head -n "$TCPDUMP_FLOWS" "$work/sample" | while read -r id; do
  line=$(grep -m1 -F "\"community_id\":\"$id\"" "$work/flows1.json")
  f=$(python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
s, d = r["source"], r["destination"]
parts = [f"host {s['ip']}", f"host {d['ip']}"]
if s.get("port"): parts.append(f"port {s['port']}")
if d.get("port"): parts.append(f"port {d['port']}")
print(" and ".join(parts))
PY
)
  /usr/bin/time -f '%e' -a -o "$work/tcpdump" tcpdump -r "$big" -w /dev/null "$f" 2>/dev/null
done
td=$(sort -g "$work/tcpdump" | awk '{v[NR]=$1} END {printf "%.0f", v[int((NR+1)/2)]*1000}')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
mkdir -p bench/results
{
echo "# retrieval latency by flow"
echo
echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), COPIES=$COPIES bench/retrieval.sh: embedded store, GET /api/v1/pcap?flow=<Community ID> over 127.0.0.1 (plaintext), one keep-alive connection (benchtool retrieve), request sent to last pcap byte; the same $SAMPLES flows (sampled from the first $n1 packets) at every size, $ROUNDS timed passes after a warm-up pass, once Pebble's compactions have settled (no flush or compaction for $SETTLE)."
echo
cat <<TABLE
| store holds | flows sampled (timed requests) | p50 ms | p99 ms | store p50 / p99 ms | first retrieval p50 / p99 ms |
|---|---|---|---|---|---|
| $n1 packets | $SAMPLES ($((SAMPLES * ROUNDS))) | $p50a | $p99a | $s50a / $s99a | $f50a / $f99a |
| $total packets ($((store_bytes / 1048576)) MiB store) | $SAMPLES ($((SAMPLES * ROUNDS))) | $p50b | $p99b | $s50b / $s99b | $f50b / $f99b |
$(if [[ -n $p50c ]]; then echo "| $((total * copies_done)) packets ($((store_bytes_c / 1048576)) MiB store) | $SAMPLES ($((SAMPLES * ROUNDS))) | $p50c | $p99c | $s50c / $s99c | $f50c / $f99c |"; fi)

p99 growth 1M -> ${total}: $(ratio "$p99b" "$p99a")x$(if [[ -n $p99c ]]; then echo "; 1M -> $((total * copies_done)): $(ratio "$p99c" "$p99a")x"; fi) (target < 1.5x); p99 target < 50 ms.
Store p99 growth (lookup + block scan, Server-Timing): 1M -> ${total}: $(ratio "$s99b" "$s99a")x$(if [[ -n $s99c ]]; then echo "; 1M -> $((total * copies_done)): $(ratio "$s99c" "$s99a")x"; fi).
p99 is the latency from sending the request to the last pcap byte; "store" is the collector's own time in Pebble (flow lookup, block scan and decode); "first retrieval" is the warm-up pass, each flow's first retrieval (block cache cold for it).
$fresh_line
tcpdump -r BIG (${total} packets) filtering one flow: median ${td} ms over ${TCPDUMP_FLOWS} flows; tapir p50 at ${total} packets is $(ratio "$td" "$p50b")x faster.
TABLE
echo
echo "Pebble at each size (benchtool settle / retrieve):"
echo
echo '```'
for l in 1m 10m big; do if [[ -f $work/pebble-$l ]]; then grep -h '^settle:\|^stored:\|^load:\|pebble during\|retrieve: ' "$work/pebble-$l" | sed "s/^/$l /"; fi; done
echo '```'
} | tee bench/results/retrieval.md
