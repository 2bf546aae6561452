#!/usr/bin/env bash
# opensearch.sh (make bench, with Kafka and OpenSearch up): the downstream
# search path end to end, sensor -> collector -> Kafka -> indexer
# (collector/searchindex) -> OpenSearch, beside the collector's Kafka
# publish rate in the same run.
#
#  1. Throughput. ROUNDS x PARALLEL replays of CAPTURE (zeek's
#     echo-connections, 500 TCP flows, 82582 packets) by bin/tapir-sensor -r
#     at full speed (PARALLEL sensors at once, each a new sensor id: every
#     replay is new flow instances) into one bin/tapir-collector (embedded
#     store, publishing to Kafka, indexing into OpenSearch). A poller
#     searches the indices every POLL seconds for documents not seen yet.
#       flows/s indexed end to end = documents / (last document visible -
#                                    first sensor started)
#       Kafka publish rate         = tapir_kafka_records_total of the flows
#                                    topic / (last sensor drained - first
#                                    sensor started)
#  2. Lag. One more replay paced in real time (a pacer rewrites the packet
#     times to the wall clock and writes each packet to the sensor's stdin
#     at that time, SPEED times faster when SPEED > 1, the times compressed
#     alike), so a packet's timestamp is the moment the sensor got it. The
#     lag of a flow is the poll that first saw its document minus its
#     event.end (its last packet's capture time): sensor flow export and
#     batching, collector, Kafka, indexer and the index refresh (1 s), plus
#     up to POLL of polling. Printed as p50/p99/max, split at the Kafka
#     record's timestamp (kcat): capture -> in Kafka (sensor, collector)
#     and in Kafka -> searchable (indexer, refresh).
#  3. Indexer from a backlog. A second collector, no sensor, its own
#     consumer group and index prefix, indexes the whole flows topic from
#     the beginning: documents / (last visible - its start), and after
#     the first poll that saw any (consumer group joined, index created):
#     the documents seen after it / (last visible - that poll).
#
# Environment: TAPIR_KAFKA (127.0.0.1:9092), TAPIR_OPENSEARCH
# (http://127.0.0.1:9200), TAPIR_PCAPS, CAPTURE, ROUNDS (10), PARALLEL
# (2), SPEED (1), POLL (0.2), KEEP=1 keeps the work directory,
# RESULTS_MD (bench/results/opensearch.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export TAPIR_PCAPS=${TAPIR_PCAPS:-$(cd "$root/.." && pwd)/shared/pcaps}
kafka=${TAPIR_KAFKA:-127.0.0.1:9092}
search=${TAPIR_OPENSEARCH:-http://127.0.0.1:9200}
capture=${CAPTURE:-$TAPIR_PCAPS/zeek/echo-connections.pcap.gz}
rounds=${ROUNDS:-10}
parallel=${PARALLEL:-2}
speed=${SPEED:-1}
poll=${POLL:-0.2}
results_md=${RESULTS_MD:-$root/bench/results/opensearch.md}

log() { echo "== $*" >&2; }

curl -sf "$search/_cluster/health" >/dev/null || { log "no OpenSearch at $search (deploy/opensearch/start.sh)"; exit 1; }
[[ -x bin/tapir-sensor && -x bin/tapir-collector ]] || go build -o bin/ ./cmd/tapir-sensor ./cmd/tapir-collector
mkdir -p "$root/.cache/bench" "$(dirname "$results_md")"
work=$(mktemp -d "$root/.cache/bench/opensearch.XXXXXX")
suffix=$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
prefix=tapir-flows-bench$suffix-
topic=bench-$suffix.flows
collectors=()
cleanup() {
  for pid in "${collectors[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  curl -s -XDELETE "$search/$prefix*,${prefix}backlog-*" >/dev/null || true
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo '{}' >"$work/tokens.yaml"
# start_collector NAME INDEX_PREFIX GROUP: a collector publishing to the
# flows topic and indexing it; sets ingest and metrics.
start_collector() {
  local name=$1 iprefix=$2 group=$3
  ingest=127.0.0.1:$(free_port)
  metrics=127.0.0.1:$(free_port)
  local api=127.0.0.1:$(free_port)
  cat >"$work/$name.yaml" <<YAML
store:
  dir: $work/store-$name
retention:
  max_age: 0s
ingest:
  listen: $ingest
  tls: {insecure: true}
api:
  listen: $api
  tls: {insecure: true}
  tokens_file: $work/tokens.yaml
  audit_file: $work/audit-$name.jsonl
metrics:
  listen: $metrics
kafka:
  brokers: ["$kafka"]
  topics: {flows: $topic, health: bench-$suffix.health, alerts: bench-$suffix.alerts}
  partitions: 6
opensearch:
  urls: ["$search"]
  index_prefix: $iprefix
  consumer_group: $group
  retention_days: 0
YAML
  bin/tapir-collector --config "$work/$name.yaml" --log-level warn >"$work/$name.log" 2>&1 &
  collectors+=($!)
  for _ in $(seq 1 300); do curl -sf "http://$metrics/metrics" >/dev/null && break; sleep 0.1; done
  curl -sf "http://$metrics/metrics" >/dev/null || { log "collector $name did not start"; cat "$work/$name.log" >&2; exit 1; }
}
start_collector main "$prefix" "bench-$suffix"

metric() { # metric NAME LABELFRAGMENT: the sum of its samples
  curl -sf "http://$metrics/metrics" | awk -v n="$1" -v l="$2" 'index($0, n) == 1 && index($0, l) { s += $NF } END { printf "%.0f\n", s }'
}

bin/tapir-sensor -r "$capture" --sensor-id probe --flows-out "$work/probe.json" 2>/dev/null
per_replay=$(wc -l <"$work/probe.json")
log "$capture: $per_replay flow records per replay"

# The poller: every POLL seconds, the documents of the indices not seen
# yet (of one sensor id when given); writes "visible_unix event_end_unix"
# per document, stops at N.
cat >"$work/poll.py" <<'PY'
import json, sys, time, urllib.request, datetime
base, pattern, want, every, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
only = [{"term": {"tapir.sensor_id": sys.argv[6]}}] if len(sys.argv) > 6 else []
seen = set()
deadline = time.time() + 900
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)
with open(out, "w") as f:
    while len(seen) < want and time.time() < deadline:
        t0 = time.time()
        try:
            res = post("/" + pattern + "/_search", {"size": 10000, "_source": ["event.end"],
                       "query": {"bool": {"filter": only, "must_not": {"ids": {"values": list(seen)}}}}})
        except Exception:
            time.sleep(every)
            continue
        now = time.time()
        for h in res["hits"]["hits"]:
            if h["_id"] in seen:
                continue
            seen.add(h["_id"])
            end = datetime.datetime.fromisoformat(h["_source"]["event"]["end"].replace("Z", "+00:00")).timestamp()
            f.write(f"{now:.3f} {end:.6f} {h['_id']}\n")
        f.flush()
        time.sleep(max(0, every - (time.time() - now)))
print(len(seen))
PY

# The pacer: the capture on stdout as pcap, packet times moved to the wall
# clock (SPEED times faster), each packet written at its time.
cat >"$work/pace.py" <<'PY'
import gzip, struct, sys, time
path, speed = sys.argv[1], float(sys.argv[2])
f = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
hdr = f.read(24)
magic = struct.unpack("<I", hdr[:4])[0]
if magic not in (0xa1b2c3d4, 0xa1b23c4d):
    sys.exit("pace.py: little-endian pcap only")
nano = magic == 0xa1b23c4d
div = 1e9 if nano else 1e6
out = sys.stdout.buffer
out.write(hdr)
first = None
start = time.time()
while True:
    rh = f.read(16)
    if len(rh) < 16:
        break
    sec, frac, incl, orig = struct.unpack("<IIII", rh)
    data = f.read(incl)
    ts = sec + frac / div
    if first is None:
        first = ts
    at = start + (ts - first) / speed
    wait = at - time.time()
    if wait > 0.002:
        out.flush()
        time.sleep(wait)
    s = int(at)
    out.write(struct.pack("<IIII", s, int((at - s) * div), incl, orig))
    out.write(data)
out.flush()
PY

total=$((rounds * parallel * per_replay))
log "throughput: $rounds rounds x $parallel sensors = $total flows"
python3 "$work/poll.py" "$search" "$prefix*" "$total" "$poll" "$work/tput.txt" >"$work/tput.n" &
poller=$!
kafka0=$(metric tapir_kafka_records_total "topic=\"$topic\"")
t0=$(date +%s.%N)
for r in $(seq 1 "$rounds"); do
  pids=()
  for p in $(seq 1 "$parallel"); do
    bin/tapir-sensor -r "$capture" --sensor-id "bench-$r-$p" --collector "$ingest" --insecure \
      --spool-dir "$work/spool-$r-$p" --log-level warn 2>>"$work/sensors.log" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
done
t1=$(date +%s.%N)
kafka1=$(metric tapir_kafka_records_total "topic=\"$topic\"")
wait "$poller"
indexed=$(cat "$work/tput.n")
last=$(awk 'NR == 1 || $1 > m { m = $1 } END { print m }' "$work/tput.txt")

log "lag: one replay paced at ${speed}x real time"
python3 "$work/poll.py" "$search" "$prefix*" "$per_replay" "$poll" "$work/lag.txt" bench-paced >/dev/null &
poller=$!
python3 "$work/pace.py" "$capture" "$speed" |
  bin/tapir-sensor -r - --sensor-id bench-paced --collector "$ingest" --insecure \
    --spool-dir "$work/spool-paced" --log-level warn 2>>"$work/sensors.log"
wait "$poller"
# Kafka's timestamp of each flow's record (its latest segment: the one
# the index holds), by flow id.
kcat -b "$kafka" -C -t "$topic" -o beginning -e -q -f '%T %h\n' 2>/dev/null |
  sed -n 's/^\([0-9]*\) .*flow_id=\([0-9a-f]*\).*/\2 \1/p' >"$work/kafka-ts.txt"
# visible - end, kafka - end, visible - kafka per paced flow.
awk 'NR == FNR { k[$1] = $2 / 1000; next } ($3 in k) { print $1 - $2, k[$3] - $2, $1 - k[$3] }' \
  "$work/kafka-ts.txt" "$work/lag.txt" >"$work/lags.txt"

log "indexer from a backlog: a second collector indexes the whole topic"
backlog=$((total + per_replay))
tb=$(date +%s.%N)
start_collector backlog "${prefix}backlog-" "bench-$suffix-backlog"
python3 "$work/poll.py" "$search" "${prefix}backlog-*" "$backlog" "$poll" "$work/backlog.txt" >"$work/backlog.n"
backlog_n=$(cat "$work/backlog.n")
backlog_last=$(awk 'NR == 1 || $1 > m { m = $1 } END { print m }' "$work/backlog.txt")
backlog_first=$(awk 'NR == 1 || $1 < m { m = $1 } END { print m }' "$work/backlog.txt")
backlog_after=$(awk -v f="$backlog_first" '$1 > f' "$work/backlog.txt" | wc -l)

python3 - "$work/lags.txt" "$indexed" "$total" "$t0" "$t1" "$last" "$kafka0" "$kafka1" "$capture" "$rounds" "$parallel" "$speed" "$poll" "$results_md" \
  "$backlog_n" "$tb" "$backlog_last" "$backlog_first" "$backlog_after" <<'PY'
import sys, datetime
rows = [[float(v) for v in x.split()] for x in open(sys.argv[1]) if x.strip()]
indexed, total = int(sys.argv[2]), int(sys.argv[3])
t0, t1, last = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
k0, k1 = int(sys.argv[7]), int(sys.argv[8])
capture, rounds, parallel, speed, poll, md = sys.argv[9:15]
bn, tb, blast = int(sys.argv[15]), float(sys.argv[16]), float(sys.argv[17])
bfirst, bafter = float(sys.argv[18]), int(sys.argv[19])
def stats(col):
    v = sorted(r[col] for r in rows)
    if not v:
        return "none"
    q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
    return f"p50 {q(0.5):.2f} s, p99 {q(0.99):.2f} s, max {v[-1]:.2f} s"
lines = [
    f"Downstream search (bench/opensearch.sh), {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,"
    f" {capture.split('/')[-1]} x {int(rounds) * int(parallel)} ({parallel} sensors at once):",
    f"  collector Kafka publish (flows topic, acked)    {(k1 - k0) / (t1 - t0):10.0f} records/s ({k1 - k0} records in {t1 - t0:.1f} s)",
    f"  indexed end to end (visible in OpenSearch)     {indexed / (last - t0):10.0f} flows/s ({indexed}/{total} flows, last visible {last - t1:.1f} s after the sensors drained)",
    f"  indexer alone, from a backlog of the topic     {bn / (blast - tb):10.0f} flows/s ({bn} flows, collector start to last visible;"
    f" {bafter / (blast - bfirst):.0f} flows/s after the first documents appeared)",
    f"  capture -> searchable ({len(rows)} flows, {speed}x real time, poll {poll} s): {stats(0)}",
    f"    of which capture -> acked in Kafka:  {stats(1)}",
    f"    of which Kafka -> searchable:        {stats(2)}",
]
print("\n".join(lines))
open(md, "w").write("```\n" + "\n".join(lines) + "\n```\n")
if indexed != total or not rows:
    sys.exit(f"only {indexed} of {total} flows became searchable, {len(rows)} paced flows measured")
PY
