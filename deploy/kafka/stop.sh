#!/usr/bin/env bash
# Stops the Kafka node started by start.sh (SIGTERM, then SIGKILL after
# 30 s) and removes its temporary data directory. Idempotent.
#   --kill       SIGKILL at once (a crash)
#   --keep-data  keep the data directory for start.sh --resume
set -euo pipefail
kill_now=0 keep=0
for a in "$@"; do
  case "$a" in --kill) kill_now=1 ;; --keep-data) keep=1 ;; *) echo "usage: $0 [--kill] [--keep-data]" >&2; exit 2 ;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
run=${TAPIR_SERVICES_DIR:-$root/.cache/services}/kafka
if [ -f "$run/pid" ]; then
  pid=$(cat "$run/pid")
  if kill -0 "$pid" 2>/dev/null; then
    if [ $kill_now = 1 ]; then kill -9 "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kafka: still running after 30s, killing"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$run/pid"
  echo "kafka: stopped"
fi
if [ $keep = 0 ] && [ -f "$run/data" ]; then
  data=$(cat "$run/data")
  case "$data" in /tmp/tapir-kafka.*) rm -rf "$data" ;; esac
  rm -f "$run/data"
fi
