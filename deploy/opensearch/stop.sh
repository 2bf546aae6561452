#!/usr/bin/env bash
# Stops the OpenSearch node started by start.sh (SIGTERM, then SIGKILL after
# 30 s) and removes its temporary data directory. Idempotent.
#   --kill       SIGKILL at once (a crash)
#   --keep-data  keep the data directory for start.sh --resume
exec "$(dirname "$0")/../stop-service.sh" opensearch "$@"
