# shellcheck shell=bash
# What deploy/{kafka,hbase,opensearch}/start.sh share, sourced (not run) by
# them once they set name, the service (kafka, hbase or opensearch). It
# sets
#   here  the script's directory, deploy/$name (fetch.sh and check.sh are there)
#   root  the repository
#   run   the service's run-state directory ($TAPIR_SERVICES_DIR/$name,
#         default <repo>/.cache/services/$name, as stop-service.sh reads it)
#   log   the service's log file there
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
run=${TAPIR_SERVICES_DIR:-$root/.cache/services}/$name
log=$run/$name.log

# svc_exit_if_running: when the service already runs (its pid file names
# a live process), says so and becomes check.sh.
svc_exit_if_running() {
  if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
    echo "$name: already running (pid $(cat "$run/pid"))"
    exec "$here/check.sh"
  fi
}

# svc_prepare [--resume]: fetches the jars if needed, makes $run, forgets
# the last pid and sets data, the data directory, and resume: with
# --resume the directory a stop.sh --keep-data left (resume=1), otherwise
# a fresh /tmp/tapir-$name.XXXXXX (resume=0) recorded in $run/data for
# stop.sh to remove.
svc_prepare() {
  "$here/fetch.sh"
  mkdir -p "$run"
  rm -f "$run/pid"
  resume=0
  if [ "${1:-}" = "--resume" ] && [ -f "$run/data" ] && [ -d "$(cat "$run/data")" ]; then
    resume=1
    data=$(cat "$run/data")
  else
    data=$(mktemp -d "/tmp/tapir-$name.XXXXXX")
    echo "$data" >"$run/data"
  fi
}

# svc_launch COMMAND [ARG...]: runs the service in the background, immune
# to hangups, its output appended to $log, and records its pid.
svc_launch() {
  nohup "$@" >>"$log" 2>&1 &
  echo $! >"$run/pid"
  echo "$name: starting (pid $!, data $data, log $log)"
}

# svc_wait TIMEOUT STATE: runs check.sh every second until it passes;
# fails (the log's last lines on stderr) when the service exits or is not
# STATE (such as "ready") after TIMEOUT seconds.
svc_wait() {
  local deadline=$((SECONDS + $1))
  until "$here/check.sh" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$run/pid")" 2>/dev/null; then
      svc_fail "exited during start-up"
    fi
    if [ $SECONDS -ge $deadline ]; then
      svc_fail "not $2 after ${1}s"
    fi
    sleep 1
  done
}

# svc_fail WHAT: says the start failed (WHAT), shows the log's last lines
# and exits 1.
svc_fail() {
  echo "$name: $1; last log lines:" >&2
  tail -n 40 "$log" >&2
  exit 1
}
