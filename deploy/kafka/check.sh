#!/usr/bin/env bash
# Exits 0 when the Kafka node started by start.sh (or any broker at
# $TAPIR_KAFKA, default 127.0.0.1:9092) answers a metadata request with a
# broker, using kcat (Debian package kcat) with a 5 s limit.
set -euo pipefail
addr=${TAPIR_KAFKA:-127.0.0.1:${TAPIR_KAFKA_PORT:-9092}}
out=$(timeout 10 kcat -b "$addr" -L -m 5 2>&1) || { echo "kafka: not answering at $addr"; exit 1; }
if grep -Eq "^ *[1-9][0-9]* brokers:" <<<"$out"; then
  echo "kafka: ready at $addr"
  exit 0
fi
echo "kafka: no broker in metadata at $addr"
exit 1
