#!/usr/bin/env bash
# tapir demo on the embedded default (Pebble store, no Kafka, no HBase):
# a development CA, a collector on 127.0.0.1, a sensor that reads a real
# capture and streams it over mutual TLS, then an investigator who lists
# flows and pulls one flow's pcap by Community ID, opened with tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
PCAPS=${TAPIR_PCAPS:-$ROOT/../shared/pcaps}
CAPTURE=${DEMO_CAPTURE:-$PCAPS/zeek/wikipedia.pcap}
WORK=$ROOT/.cache/demo
INGEST=127.0.0.1:${DEMO_INGEST_PORT:-14740}
API=127.0.0.1:${DEMO_API_PORT:-18443}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

step "development CA and certificates (tapir certs)"
"$BIN/tapir" certs init -dir certs >/dev/null
"$BIN/tapir" certs server -dir certs localhost 127.0.0.1 >/dev/null
"$BIN/tapir" certs sensor -dir certs demo-sensor >/dev/null
ls certs

step "an API token for the investigator (stored hashed)"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '"%s":\n  subject: demo-investigator\n  roles: [flows:read, pcap:read]\n' \
  "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" > tokens.yaml
printf '%s\n' "$TOKEN" > token
chmod 600 token tokens.yaml

# The shared captures are years old: keep packets by size only, or the
# default 7-day retention would expire them at its first run.
cat > collector.yaml <<YAML
store:
  dir: $WORK/store
retention:
  max_age: 0s
ingest:
  listen: $INGEST
  tls: {ca: certs/ca.pem, cert: certs/server.pem, key: certs/server-key.pem}
api:
  listen: $API
  tls: {ca: certs/ca.pem, cert: certs/server.pem, key: certs/server-key.pem}
  tokens_file: tokens.yaml
  audit_file: $WORK/audit.jsonl
metrics:
  listen: ""
YAML

step "collector on the embedded store"
"$BIN/tapir-collector" --config collector.yaml >collector.log 2>&1 &
COLLECTOR=$!
trap 'kill $COLLECTOR 2>/dev/null || true; wait $COLLECTOR 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "api listening" collector.log && break
  kill -0 $COLLECTOR 2>/dev/null || { cat collector.log; exit 1; }
  sleep 0.1
done
grep "listening" collector.log

step "sensor reads $(basename "$CAPTURE") and streams flows and packet blocks over mTLS"
"$BIN/tapir-sensor" -r "$CAPTURE" --sensor-id demo-sensor --collector "$INGEST" \
  --tls-dir certs --spool-dir "$WORK/spool" --log-level warn

export TAPIR_SERVER=https://$API TAPIR_TOKEN=$TOKEN
first=$(tshark -r "$CAPTURE" -c 1 -T fields -e frame.time_epoch 2>/dev/null | cut -d. -f1)
WINDOW="after $((first - 60)) and before $((first + 86400))"

step "flows the collector holds (tapir flows --query 'tcp and port 80 and $WINDOW')"
"$BIN/tapir" flows --ca certs/ca.pem --table --query "tcp and port 80 and $WINDOW" | head -12

FLOW=$("$BIN/tapir" flows --ca certs/ca.pem --json --query "tcp and port 80 and $WINDOW" \
  | grep -o '"community_id":"[^"]*"' | head -1 | cut -d'"' -f4)
step "pcap of flow $FLOW (tapir pcap --flow)"
"$BIN/tapir" pcap --ca certs/ca.pem --flow "$FLOW" -o flow.pcap
tshark -r flow.pcap 2>/dev/null

step "the audit log recorded the retrieval"
tail -n 1 audit.jsonl
echo
echo "demo files are in $WORK (open flow.pcap in Wireshark)"
