#!/usr/bin/env bash
# live.sh: live capture drop test (root). Two throwaway network namespaces
# joined by a veth pair (MTU 9000, addresses only on those two veths, IPv6
# off), as internal/netnstest builds them. The first SLICE_PACKETS packets
# (default 1M) of the big input (bench/mkbig.sh) are replayed with
# tcpreplay --pps=RATE from the peer end into the capture end, once per
# rate and capturer:
#
#   sensor-1w    tapir-sensor -i IF --workers 1 --flows-out /dev/null --blocks-out TMP
#   sensor-2w    the same with --workers 2
#   tcpdump      tcpdump -i IF -w FILE
#   netsniff-ng  netsniff-ng --in IF --out FILE --silent
#
# Each capturer runs under `benchtool rusage` (CPU and peak RSS from
# getrusage), is ready before tcpreplay starts and is stopped with SIGINT
# afterwards. Received counts: tapir-sensor's "capture finished" packets=,
# tcpdump's "packets captured", netsniff-ng's "packets passed filter";
# sent: tcpreplay's "Successful packets". Writes bench/results/live.md.
#
# Environment: RATES (default "100000 200000 300000 max"; max =
# tcpreplay --topspeed, as fast as tcpreplay goes here), SLICE_PACKETS,
# BENCH_CACHE (default .cache/bench). Everything stays in the two
# namespaces, which the EXIT trap deletes; each run is bounded by timeouts.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $(id -u) == 0 ]] || { echo "live.sh: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpreplay tcpdump netsniff-ng editcap capinfos; do
  command -v "$t" >/dev/null || { echo "live.sh: $t not found (make deps installs it)" >&2; exit 1; }
done
[[ -x bin/tapir-sensor ]] || { echo "live.sh: bin/tapir-sensor missing: run make build" >&2; exit 1; }

export BENCH_CACHE=${BENCH_CACHE:-$root/.cache/bench}
rates=${RATES:-100000 200000 300000 max}
slice_n=${SLICE_PACKETS:-1000000}
results=$root/bench/results
mkdir -p "$results"
work=$(mktemp -d "$BENCH_CACHE/live.XXXXXX")
id=$$
cns=tapir-live-$id-c
pns=tapir-live-$id-p
cif=tl${id}c
pif=tl${id}p
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$cns" 2>/dev/null || true
  ip netns del "$pns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

go build -o "$work/benchtool" ./bench/benchtool
big=$(./bench/mkbig.sh)
slice=$work/slice.pcap
editcap -r "$big" "$slice" "1-$slice_n"
slice_pkts=$(capinfos -T -r -c "$slice" | cut -f2)

ip netns add "$cns"
ip netns add "$pns"
ip link add "$cif" netns "$cns" type veth peer name "$pif" netns "$pns"
for e in "$cns $cif 192.0.2.1/24" "$pns $pif 192.0.2.2/24"; do
  read -r ns ifc addr <<<"$e"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$ifc" mtu 9000
  ip -n "$ns" addr add "$addr" dev "$ifc"
done
ip -n "$cns" link set "$cif" up
ip -n "$pns" link set "$pif" up

# waitfor FILE REGEXP SECONDS: until FILE has a line matching REGEXP.
waitfor() {
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# run NAME RATE: one capturer at one rate; appends a result line to $work/rows.
run() {
  local name=$1 rate=$2 out=$work/$1-$2 ready
  rm -rf "$work/blocks" "$work/cap.pcap" && mkdir -p "$work/blocks"
  local cmd
  case $name in
    sensor-1w | sensor-2w)
      cmd=(bin/tapir-sensor -i "$cif" --workers "${name#sensor-}" --sensor-id live
        --flows-out /dev/null --blocks-out "$work/blocks")
      cmd[4]=${cmd[4]%w}
      ready='' ;;
    tcpdump) cmd=(tcpdump -i "$cif" -w "$work/cap.pcap"); ready='listening on' ;;
    netsniff-ng) cmd=(netsniff-ng --in "$cif" --out "$work/cap.pcap" --silent); ready='Running' ;;
  esac
  "$work/benchtool" rusage -o "$out.ru" -- timeout -s INT 300 ip netns exec "$cns" "${cmd[@]}" >"$out.log" 2>&1 </dev/null &
  local bpid=$!
  pids+=("$bpid")
  # Ready: tcpdump and netsniff-ng say so; tapir-sensor has its packet
  # socket open once /proc/net/packet in the namespace lists one.
  if [[ -n $ready ]]; then
    waitfor "$out.log" "$ready" 20 || log "$name: no '$ready' line"
  else
    for ((i = 0; i < 200; i++)); do
      [[ $(ip netns exec "$cns" awk 'NR > 1' /proc/net/packet | wc -l) -ge ${cmd[4]} ]] && break
      sleep 0.1
    done
  fi
  sleep 1
  local speed=--pps=$rate
  [[ $rate == max ]] && speed=--topspeed
  ip netns exec "$pns" tcpreplay -i "$pif" "$speed" --preload-pcap "$slice" >"$out.replay" 2>&1 || true
  sleep 2
  # SIGINT to the capturer (timeout's child: the command ip netns exec became).
  local tpid cpid
  tpid=$(pgrep -P "$bpid" || true)
  cpid=$(pgrep -P "$tpid" || true)
  kill -INT "${cpid:-$tpid}" 2>/dev/null || true
  wait "$bpid" || true
  local sent rx achieved u s m w rc cpu cpp
  sent=$(awk '/Successful packets:/ {print $3}' "$out.replay")
  achieved=$(awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /pps/) {print $(i - 1); exit}}' "$out.replay")
  case $name in
    sensor-*) rx=$(grep 'capture finished' "$out.log" | grep -oE 'packets=[0-9]+' | head -1 | cut -d= -f2) ;;
    tcpdump) rx=$(awk '/packets captured/ {print $1}' "$out.log") ;;
    netsniff-ng) rx=$(tr -d '\r' <"$out.log" | awk '/packets passed filter/ {print $1}') ;;
  esac
  read -r u s m w rc <"$out.ru" || true
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')
  cpp=$(awk -v c="$cpu" -v n="${rx:-0}" 'BEGIN { if (n > 0) printf "%.0f", c * 1e9 / n; else print "n/a" }')
  log "$name at $rate pps: sent ${sent:-?} (achieved ${achieved:-?} pps), received ${rx:-?}, cpu ${cpu} s, rss $((m / 1024)) MiB"
  echo "$name $rate ${achieved:-n/a} ${sent:-n/a} ${rx:-n/a} $cpu $cpp $((m / 1024))" >>"$work/rows"
  if [[ -z ${rx:-} ]]; then
    log "$name: no received count; last lines:"
    tail -5 "$out.log" >&2
  fi
}

: >"$work/rows"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for rate in $rates; do
  for name in sensor-1w sensor-2w tcpdump netsniff-ng; do
    run "$name" "$rate"
  done
done

md=$results/live.md
{
  echo "# live capture drop test"
  echo
  echo "Run: $started, bench/live.sh. Machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)."
  echo "Input: the first $slice_pkts packets of the big input replayed with \`tcpreplay --pps=RATE --preload-pcap\` over a veth pair (MTU 9000) between two network namespaces; the capturer runs in the capture namespace. tcpreplay, the capturer and the kernel's veth path share the machine's $(nproc) cores."
  echo "Received: tapir-sensor's \"capture finished\" packets=, tcpdump's \"packets captured\", netsniff-ng's \"packets passed filter\"; dropped = sent - received. CPU: getrusage of the capturer (benchtool rusage), per received packet."
  echo
  echo "| capturer | target pps | achieved pps | sent | received | dropped | drop % | CPU s | CPU ns/packet | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  while read -r name rate ach sent rx cpu cpp rss; do
    case $name in
      sensor-1w) c="tapir-sensor -i IF --workers 1 --flows-out /dev/null --blocks-out DIR" ;;
      sensor-2w) c="tapir-sensor -i IF --workers 2 --flows-out /dev/null --blocks-out DIR" ;;
      tcpdump) c="tcpdump -i IF -w FILE" ;;
      netsniff-ng) c="netsniff-ng --in IF --out FILE --silent" ;;
    esac
    dropped=$(awk -v s="$sent" -v r="$rx" 'BEGIN { if (s == "n/a" || r == "n/a") print "n/a"; else print s - r }')
    pct=$(awk -v s="$sent" -v r="$rx" 'BEGIN { if (s == "n/a" || r == "n/a" || s == 0) print "n/a"; else printf "%.2f", (s - r) * 100 / s }')
    echo "| \`$c\` | $rate | $ach | $sent | $rx | $dropped | $pct | $cpu | $cpp | $rss |"
  done <"$work/rows"
} >"$md"
cat "$md"
