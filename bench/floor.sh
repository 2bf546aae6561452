#!/usr/bin/env bash
# floor.sh: the floor under the busy-tap CPU targets, measured in ONE run
# with the commands interleaved (round 1: every command once, round 2:
# every command again, ...), so the shared machine's load hits them alike.
#
#   tcpdump -r T -w /dev/null        the targets' baseline
#   tcpdump -r T -w OUT               + writing the whole file (page-cache write floor)
#   benchtool floor -mode read T      the sensor's file reader alone
#   benchtool floor -mode s2 T        + S2 of the packet bytes in 8 KiB chunks
#                                     (the compression floor: tapir-sensor has
#                                     no setting that turns compression off)
#   tapir-sensor -r T --flows-out F   read, decode, flows, JSON records
#   tapir-sensor -r T --blocks-out D  + per-flow blocks, delta, S2, segment writes
#   tapir-sensor -r T --blocks-out D --flows-out F   the full job
#
# CPU = user + sys of the child (benchtool rusage, getrusage); best of
# REPEAT rounds (default 3) per command. SOFTFLOWD=1 adds softflowd -r T
# (the big input's second baseline); BASE_SENSOR=PATH adds the full job
# run by another tapir-sensor build (before/after in the same run). Usage:
#
#   bench/floor.sh [TRACE]      default: the many-flows trace of bench/gen
#                               (cached as $BENCH_CACHE/many.pcap)
#
# Prints a markdown table (also written to $FLOOR_MD, default
# bench/results/floor-latest.md). Needs bin/tapir-sensor (make build).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export BENCH_CACHE=${BENCH_CACHE:-$root/.cache/bench}
repeat=${REPEAT:-3}
mkdir -p "$BENCH_CACHE"
work=$(mktemp -d "$BENCH_CACHE/floor.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "== $*" >&2; }

[[ -x bin/tapir-sensor ]] || { log "bin/tapir-sensor missing: run make build"; exit 1; }
benchtool=$work/benchtool
go build -o "$benchtool" ./bench/benchtool

trace=${1:-}
if [[ -z $trace ]]; then
  trace=$BENCH_CACHE/many.pcap
  many_args=(-flows 200000 -open 75000 -seed 1)
  stamp="${many_args[*]} $(cat bench/gen/*.go | sha256sum | cut -c1-16)"
  if [[ ! -s $trace || $(cat "$trace.ok" 2>/dev/null) != "$stamp" ]]; then
    log "generating the many-flows trace: go run ./bench/gen ${many_args[*]}"
    rm -f "$trace.ok"
    go run ./bench/gen "${many_args[@]}" -o "$trace"
    echo "$stamp" >"$trace.ok"
  fi
fi
pkts=$(capinfos -T -r -c "$trace" | cut -f2)
size=$(stat -c %s "$trace")
cat "$trace" >/dev/null # page cache: every command reads it from memory

names=(td-null td-file read s2 flows blocks full)
[[ ${SOFTFLOWD:-0} == 1 ]] && names+=(softflowd)
[[ -n ${BASE_SENSOR:-} ]] && names+=(base)
declare -A desc cpu rss wall
sensor=$root/bin/tapir-sensor
sfdir=$(mktemp -d /tmp/sfd.XXXXXX) # softflowd keeps 15 characters of -r: run it from the trace's directory
trap 'rm -rf "$work" "$sfdir"' EXIT
desc[td-null]="tcpdump -r T -w /dev/null"
desc[td-file]="tcpdump -r T -w OUT (writes the whole file)"
desc[read]="benchtool floor -mode read T (the sensor's reader alone)"
desc[s2]="benchtool floor -mode s2 T (reader + S2 of the packet bytes, 8 KiB chunks)"
desc[flows]="tapir-sensor -r T --flows-out F"
desc[blocks]="tapir-sensor -r T --blocks-out D"
desc[full]="tapir-sensor -r T --blocks-out D --flows-out F"
desc[softflowd]="softflowd -r T -n 127.0.0.1:9 -v 9 -d -6 -m 1000000 -c none"
desc[base]="the full job with BASE_SENSOR (${BASE_SENSOR:-}: the build before this change)"

# run NAME: one measured run of NAME; keeps the lowest CPU.
run() {
  local n=$1 line u s m w rc c
  rm -rf "$work/out" && mkdir -p "$work/out"
  case $n in
    td-null) set -- tcpdump -r "$trace" -w /dev/null ;;
    td-file) set -- tcpdump -r "$trace" -w "$work/out/copy.pcap" ;;
    read) set -- "$benchtool" floor -mode read "$trace" ;;
    s2) set -- "$benchtool" floor -mode s2 "$trace" ;;
    flows) set -- "$sensor" -r "$trace" --flows-out "$work/out/flows.json" --sensor-id bench ;;
    blocks) set -- "$sensor" -r "$trace" --blocks-out "$work/out" --sensor-id bench ;;
    full) set -- "$sensor" -r "$trace" --blocks-out "$work/out" --flows-out "$work/flows.json" --sensor-id bench ;;
    base) set -- "$BASE_SENSOR" -r "$trace" --blocks-out "$work/out" --flows-out "$work/flows.json" --sensor-id bench ;;
    softflowd) set -- bash -c 'cd "$(dirname "$1")" && exec timeout 300 softflowd -r "$(basename "$1")" \
      -n 127.0.0.1:9 -v 9 -d -6 -m 1000000 -p "$2/pid" -c none </dev/null' _ "$trace" "$sfdir" ;;
  esac
  "$benchtool" rusage -o "$work/ru" -- "$@" >"$work/$n.log" 2>&1 || true
  read -r u s m w rc <"$work/ru"
  [[ $rc == 0 ]] || { log "$n exited $rc"; tail -3 "$work/$n.log" >&2; exit 1; }
  c=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')
  log "$n: cpu $c s (user $u sys $s), rss $((m / 1024)) MiB, wall $w s"
  if [[ -z ${cpu[$n]:-} ]] || awk -v a="$c" -v b="${cpu[$n]}" 'BEGIN {exit !(a < b)}'; then
    cpu[$n]=$c rss[$n]=$((m / 1024)) wall[$n]=$w
  fi
  rm -rf "$work/out"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for ((r = 1; r <= repeat; r++)); do
  for n in "${names[@]}"; do run "$n"; done
done

md=${FLOOR_MD:-$root/bench/results/floor-latest.md}
{
  echo "Floor run: $started, \`bench/floor.sh\`, $repeat interleaved rounds, best CPU of each; load average at start $load0."
  echo "Trace: $(basename "$trace"), $pkts packets, $((size / 1048576)) MiB."
  echo
  echo "| command | CPU s (user+sys) | CPU ns/packet | peak RSS MiB | wall s | x tcpdump -w /dev/null |"
  echo "|---|---|---|---|---|---|"
  for n in "${names[@]}"; do
    echo "| \`${desc[$n]}\` | ${cpu[$n]} | $(awk -v c="${cpu[$n]}" -v p="$pkts" 'BEGIN {printf "%.0f", c * 1e9 / p}') | ${rss[$n]} | ${wall[$n]} | $(awk -v a="${cpu[$n]}" -v b="${cpu[td-null]}" 'BEGIN {printf "%.2f", a / b}') |"
  done
} >"$md"
cat "$md"
