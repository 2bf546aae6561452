#!/usr/bin/env bash
# Retrieval latency by flow as the store grows, beside tcpdump filtering the
# raw capture for the same flows (issue 3's benchmark).
#
# Streams the first 1 M packets of the big input (bench/mkbig.sh) through
# tapir-sensor into a collector on the embedded store, measures GET
# /api/v1/pcap?flow=<Community ID> for a sample of flows (p50/p99 over
# SAMPLES requests), then streams the rest (10 M packets in all) and
# measures again; finally times `tcpdump -r BIG -w /dev/null <filter>` for a
# few of the same flows. Prints a table with the growth ratio and the ratio
# to tcpdump. Everything runs on 127.0.0.1 in plaintext (a benchmark, not a
# deployment). The table also goes to bench/results/retrieval.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SAMPLES=${SAMPLES:-300}
TCPDUMP_FLOWS=${TCPDUMP_FLOWS:-3}
big=$(./bench/mkbig.sh)
work=$root/.cache/bench/retrieval
rm -rf "$work" && mkdir -p "$work"
port_ingest=${PORT_INGEST:-24740}
port_api=${PORT_API:-28443}
token=bench-token
printf '"%s":\n  subject: bench\n  roles: [admin]\n' "$(printf %s $token | sha256sum | cut -d' ' -f1)" >"$work/tokens.yaml"
cat >"$work/collector.yaml" <<YAML
store: {dir: $work/store}
retention: {max_age: 0s, interval: 1h}
ingest: {listen: 127.0.0.1:$port_ingest, tls: {insecure: true}}
api: {listen: 127.0.0.1:$port_api, tls: {insecure: true}, tokens_file: $work/tokens.yaml, audit_file: $work/audit.jsonl, audit_sync: false}
metrics: {listen: ""}
YAML
bin/tapir-collector --config "$work/collector.yaml" --log-level warn 2>"$work/collector.log" &
collector=$!
trap 'kill $collector 2>/dev/null; wait $collector 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port_api/" && break; sleep 0.1; done

stream() { # file sensor-id flows-out
  /usr/bin/time -f '%e s wall, %U s user, %S s sys' bin/tapir-sensor -r "$1" --sensor-id "$2" \
    --collector 127.0.0.1:$port_ingest --insecure --spool-dir "$work/spool-$2" --flows-out "$3" \
    --drain-timeout 10m --log-level warn
}

measure() { # label ids-file -> prints p50 p99 (ms)
  shuf -n "$SAMPLES" --random-source=<(yes) "$2" >"$work/sample"
  : >"$work/lat-$1"
  while read -r id; do
    enc=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$id")
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$port_api/api/v1/pcap?flow=$enc" >>"$work/lat-$1"
  done <"$work/sample"
  sort -g "$work/lat-$1" | awk '{v[NR]=$1} END {printf "%.2f %.2f\n", v[int(NR*0.5)]*1000, v[int(NR*0.99)]*1000}'
}

n1=1000000
total=$(capinfos -T -r -c "$big" | cut -f2)
editcap -r "$big" "$work/part1.pcap" "1-$n1"
editcap -r "$big" "$work/part2.pcap" "$((n1 + 1))-$total"

echo "streaming the first $n1 packets ..." >&2
stream "$work/part1.pcap" bench-1 "$work/flows1.json" >&2
grep -o '"community_id":"[^"]*"' "$work/flows1.json" | cut -d'"' -f4 | sort -u >"$work/ids1"
read -r p50a p99a < <(measure 1m "$work/ids1")
echo "1M packets: p50 ${p50a} ms, p99 ${p99a} ms" >&2

echo "streaming the other $((total - n1)) packets ..." >&2
stream "$work/part2.pcap" bench-2 "$work/flows2.json" >&2
read -r p50b p99b < <(measure 10m "$work/ids1")
echo "${total} packets: p50 ${p50b} ms, p99 ${p99b} ms" >&2
store_bytes=$(du -sb "$work/store" | cut -f1)

# Optionally grow the store to COPIES x the big input: each copy is the
# big input with addresses rewritten by tcprewrite (another seed), so its
# flows are new ones; the sampled flows are measured again.
COPIES=${COPIES:-1}
p50c= p99c= store_bytes_c=
if [[ $COPIES -gt 1 ]]; then
  for c in $(seq 2 "$COPIES"); do
    echo "streaming copy $c of the big input ..." >&2
    tcprewrite --seed="$((1000 + c))" --fixcsum --infile="$big" --outfile="$work/copy.pcap"
    stream "$work/copy.pcap" "bench-c$c" /dev/null >&2
    rm -f "$work/copy.pcap"
  done
  read -r p50c p99c < <(measure big "$work/ids1")
  store_bytes_c=$(du -sb "$work/store" | cut -f1)
  echo "$((total * COPIES)) packets: p50 ${p50c} ms, p99 ${p99c} ms" >&2
fi

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
echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), bench/retrieval.sh (embedded store, GET /api/v1/pcap?flow=<Community ID> over 127.0.0.1, plaintext)."
echo
cat <<TABLE
| store holds | flows sampled | p50 ms | p99 ms |
|---|---|---|---|
| $n1 packets | $SAMPLES | $p50a | $p99a |
| $total packets ($((store_bytes / 1048576)) MiB store) | $SAMPLES | $p50b | $p99b |
$(if [[ -n $p50c ]]; then echo "| $((total * COPIES)) packets ($((store_bytes_c / 1048576)) MiB store) | $SAMPLES | $p50c | $p99c |"; fi)

p99 growth 1M -> ${total}: $(ratio "$p99b" "$p99a")x$(if [[ -n $p99c ]]; then echo "; 1M -> $((total * COPIES)): $(ratio "$p99c" "$p99a")x"; fi) (target < 1.5x); p99 target < 50 ms.
tcpdump -r BIG (${total} packets) filtering one flow: median ${td} ms over ${TCPDUMP_FLOWS} flows; tapir p50 at ${total} packets is $(ratio "$td" "$p50b")x faster.
TABLE
} | tee bench/results/retrieval.md
