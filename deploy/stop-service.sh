#!/usr/bin/env bash
# Stops a test service that deploy/NAME/start.sh started (NAME: kafka, hbase
# or opensearch): SIGTERM, then SIGKILL after 30 s, and removes its temporary data
# directory. Idempotent. deploy/NAME/stop.sh calls it.
#   stop-service.sh NAME [--kill] [--keep-data]
#   --kill       SIGKILL at once (a crash)
#   --keep-data  keep the data directory for start.sh --resume
set -euo pipefail
name=${1:-}
case "$name" in kafka | hbase | opensearch) shift ;; *) echo "usage: $0 kafka|hbase|opensearch [--kill] [--keep-data]" >&2; exit 2 ;; esac
kill_now=0 keep=0
for a in "$@"; do
  case "$a" in --kill) kill_now=1 ;; --keep-data) keep=1 ;; *) echo "usage: deploy/$name/stop.sh [--kill] [--keep-data]" >&2; exit 2 ;; esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
run=${TAPIR_SERVICES_DIR:-$root/.cache/services}/$name
if [ -f "$run/pid" ]; then
  pid=$(cat "$run/pid")
  if kill -0 "$pid" 2>/dev/null; then
    if [ $kill_now = 1 ]; then kill -9 "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name: still running after 30s, killing"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$run/pid"
  echo "$name: stopped"
fi
if [ $keep = 0 ] && [ -f "$run/data" ]; then
  data=$(cat "$run/data")
  case "$data" in "/tmp/tapir-$name."*) rm -rf "$data" ;; esac
  rm -f "$run/data"
fi
