#!/usr/bin/env bash
# live.sh: live capture drop and CPU test (root). Two throwaway network
# namespaces joined by a veth pair (MTU 9000, addresses only on those two
# veths, IPv6 off), as internal/netnstest builds them. Two kinds of
# traffic, each captured in turn by every capturer:
#
#   trafgen     TRAFGEN_PACKETS (default 3,000,000) 200-byte UDP frames of
#               65,536 flows (one random byte of the destination address,
#               one of the source port), trafgen pinned to one CPU
#               (--cpus 1) at its limit
#   tcpreplay   the first SLICE_PACKETS packets (default 1M) of the big
#               input (bench/mkbig.sh) replayed with tcpreplay --pps=RATE
#               (RATES, default "max 300000"; max = --topspeed)
#
# Capturers (CAPTURERS, default "tcpdump sensor-flows sensor-blocks"):
#
#   tcpdump        tcpdump -i IF -w FILE            (the baseline)
#   sensor-flows   tapir-sensor -i IF --workers 1 --flows-out /dev/null
#   sensor-blocks  the same with --blocks-out DIR
#   sensor-blocks-base  sensor-blocks run by another build, BASE_SENSOR=PATH
#                  (before/after on the same traffic)
#   sensor-2w      --workers 2, flows and blocks
#   netsniff-ng    netsniff-ng --in IF --out FILE --silent
#
# Each capturer runs under `benchtool rusage` (CPU and peak RSS from
# getrusage), is ready before the traffic starts and is stopped with
# SIGINT afterwards. Sent: the peer veth's tx_packets delta. Received:
# tapir-sensor's "capture finished" packets=, tcpdump's "packets
# captured", netsniff-ng's "packets passed filter". The last column is the
# capturer's CPU per packet over tcpdump's in the same traffic.
#
# READ_PATH=1 (default) also runs TestLiveReadCost (sensor/capture): the
# live read path alone (a LiveSource with a no-op consumer) against
# `tcpdump -w /dev/null` on the same trafgen traffic.
#
# Writes bench/results/live.md. Environment: TRAFGEN_PACKETS, RATES,
# SLICE_PACKETS, CAPTURERS, READ_PATH, BENCH_CACHE (default .cache/bench),
# MIN_PACKETS (for mkbig.sh). Everything stays in the two namespaces,
# which the EXIT trap deletes; each run is bounded by timeouts.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $(id -u) == 0 ]] || { echo "live.sh: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpreplay trafgen tcpdump editcap capinfos; do
  command -v "$t" >/dev/null || { echo "live.sh: $t not found (make deps installs it)" >&2; exit 1; }
done
[[ -x bin/tapir-sensor ]] || { echo "live.sh: bin/tapir-sensor missing: run make build" >&2; exit 1; }

export BENCH_CACHE=${BENCH_CACHE:-$root/.cache/bench}
rates=${RATES:-max 300000}
capturers=${CAPTURERS:-tcpdump sensor-flows sensor-blocks}
tg_n=${TRAFGEN_PACKETS:-3000000}
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

# trafgen's packet: 200-byte broadcast UDP frames, 65,536 flows.
cat >"$work/udp.cfg" <<'CFG'
{
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
  0x08, 0x00,
  0x45, 0x00, const16(186), const16(0), 0x40, 0x00, 0x40, 0x11, csumip(14, 33),
  192, 0, 2, 2,
  198, 51, 100, drnd(),
  0x30, drnd(), const16(53),
  const16(166), const16(0),
  fill(0x61, 158),
}
CFG
txcount() { ip netns exec "$pns" cat "/sys/class/net/$pif/statistics/tx_packets"; }

# waitfor FILE REGEXP SECONDS: until FILE has a line matching REGEXP.
waitfor() {
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# run NAME CASE: one capturer on one traffic case (trafgen, or a tcpreplay
# rate); appends a result line to $work/rows.
run() {
  local name=$1 case=$2 out=$work/$1-$2 ready nsock=1
  rm -rf "$work/blocks" "$work/cap.pcap" && mkdir -p "$work/blocks"
  local cmd
  case $name in
    sensor-flows) cmd=(bin/tapir-sensor -i "$cif" --workers 1 --sensor-id live --flows-out /dev/null); ready='' ;;
    sensor-blocks) cmd=(bin/tapir-sensor -i "$cif" --workers 1 --sensor-id live --flows-out /dev/null --blocks-out "$work/blocks"); ready='' ;;
    sensor-blocks-base) cmd=("$BASE_SENSOR" -i "$cif" --workers 1 --sensor-id live --flows-out /dev/null --blocks-out "$work/blocks"); ready='' ;;
    sensor-2w) cmd=(bin/tapir-sensor -i "$cif" --workers 2 --sensor-id live --flows-out /dev/null --blocks-out "$work/blocks"); ready=''; nsock=2 ;;
    tcpdump) cmd=(tcpdump -i "$cif" -w "$work/cap.pcap"); ready='listening on' ;;
    netsniff-ng) cmd=(netsniff-ng --in "$cif" --out "$work/cap.pcap" --silent); ready='Running' ;;
  esac
  "$work/benchtool" rusage -o "$out.ru" -- timeout -s INT 600 ip netns exec "$cns" "${cmd[@]}" >"$out.log" 2>&1 </dev/null &
  local bpid=$!
  pids+=("$bpid")
  # Ready: tcpdump and netsniff-ng say so; tapir-sensor has its packet
  # sockets open once /proc/net/packet in the namespace lists them.
  if [[ -n $ready ]]; then
    waitfor "$out.log" "$ready" 20 || log "$name: no '$ready' line"
  else
    for ((i = 0; i < 200; i++)); do
      [[ $(ip netns exec "$cns" awk 'NR > 1' /proc/net/packet | wc -l) -ge $nsock ]] && break
      sleep 0.1
    done
  fi
  sleep 1
  local tx0 t0 t1 sent achieved
  tx0=$(txcount)
  t0=$(date +%s.%N)
  if [[ $case == trafgen ]]; then
    ip netns exec "$pns" trafgen --dev "$pif" --conf "$work/udp.cfg" -n "$tg_n" --cpus 1 -q >"$out.send" 2>&1 || true
  else
    local speed=--pps=$case
    [[ $case == max ]] && speed=--topspeed
    ip netns exec "$pns" tcpreplay -i "$pif" "$speed" --preload-pcap "$slice" >"$out.send" 2>&1 || true
  fi
  t1=$(date +%s.%N)
  sent=$(($(txcount) - tx0))
  achieved=$(awk -v n="$sent" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  if [[ $case != trafgen ]]; then
    achieved=$(awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /pps/) {printf "%.0f", $(i - 1); exit}}' "$out.send")
  fi
  sleep 2
  # SIGINT to the capturer (timeout's child: the command ip netns exec became).
  local tpid cpid
  tpid=$(pgrep -P "$bpid" || true)
  cpid=$(pgrep -P "$tpid" || true)
  kill -INT "${cpid:-$tpid}" 2>/dev/null || true
  wait "$bpid" || true
  local rx u s m w rc cpu cpp kd kf
  case $name in
    sensor-*)
      rx=$(grep 'capture finished' "$out.log" | grep -oE 'packets=[0-9]+' | head -1 | cut -d= -f2 || true)
      kd=$(grep -oE 'kernel dropped.* drops=[0-9]+' "$out.log" | grep -oE '[0-9]+$' | awk '{s += $1} END {print s + 0}' || true)
      kf=$(grep -oE 'kernel dropped.* freezes=[0-9]+' "$out.log" | grep -oE '[0-9]+$' | awk '{s += $1} END {print s + 0}' || true) ;;
    tcpdump)
      rx=$(awk '/packets captured/ {print $1}' "$out.log")
      kd=$(awk '/dropped by kernel/ {print $1}' "$out.log")
      kf=n/a ;;
    netsniff-ng) rx=$(tr -d '\r' <"$out.log" | awk '/packets passed filter/ {print $1}') ;;
  esac
  read -r u s m w rc <"$out.ru" || true
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')
  cpp=$(awk -v c="$cpu" -v n="${rx:-0}" 'BEGIN { if (n > 0) printf "%.0f", c * 1e9 / n; else print "n/a" }')
  log "$name on $case: sent $sent (${achieved:-?} pps), received ${rx:-?}, kernel drops ${kd:-0} freezes ${kf:-0}, cpu ${cpu} s ($cpp ns/packet), rss $((m / 1024)) MiB"
  echo "$name $case ${achieved:-n/a} $sent ${rx:-n/a} $cpu $cpp $((m / 1024)) ${kd:-0} ${kf:-0}" >>"$work/rows"
  if [[ -z ${rx:-} ]]; then
    log "$name: no received count; last lines:"
    tail -5 "$out.log" >&2
  fi
}

if [[ ${READ_PATH:-1} == 1 ]]; then
  log "read path alone: TestLiveReadCost"
  TAPIR_LIVE_COST=1 TAPIR_LIVE_COST_PACKETS=$tg_n go test -count=1 -run TestLiveReadCost -v ./sensor/capture/ 2>&1 |
    grep -E 'tapir LiveSource|tcpdump -w' | sed 's/^ *live_cost_linux_test.go:[0-9]*: //' >"$work/readpath" || true
fi

: >"$work/rows"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for c in trafgen $rates; do
  for name in $capturers; do
    run "$name" "$c"
  done
done

md=$results/live.md
{
  echo "# live capture drop test"
  echo
  echo "Run: $started, bench/live.sh. Machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r); load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)."
  echo "Traffic over a veth pair (MTU 9000) between two network namespaces; the capturer runs in the capture namespace and shares the machine's $(nproc) cores with the sender and the kernel's veth path."
  echo "- trafgen: $tg_n 200-byte UDP frames of 65,536 flows, \`trafgen --cpus 1\` at its limit."
  echo "- tcpreplay: the first $slice_pkts packets of the big input (bench/mkbig.sh), \`tcpreplay --pps=RATE --preload-pcap\` (max = --topspeed)."
  echo
  echo "Sent: the peer veth's tx_packets delta. Received: tapir-sensor's \"capture finished\" packets=, tcpdump's \"packets captured\", netsniff-ng's \"packets passed filter\"; dropped = sent - received; kernel drops/freezes as the capturer reports them (PACKET_STATISTICS). CPU: getrusage of the capturer (benchtool rusage), per received packet; x tcpdump = that over tcpdump's CPU per packet on the same traffic."
  echo
  echo "| capturer | target pps | achieved pps | sent | received | dropped | drop % | CPU s | CPU ns/packet | peak RSS MiB | kernel drops | freezes | x tcpdump |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  while read -r name c ach sent rx cpu cpp rss kd kf; do
    case $name in
      sensor-flows) cmd="tapir-sensor -i IF --workers 1 --flows-out /dev/null" ;;
      sensor-blocks) cmd="tapir-sensor -i IF --workers 1 --flows-out /dev/null --blocks-out DIR" ;;
      sensor-blocks-base) cmd="the same with BASE_SENSOR (${BASE_SENSOR:-}, the build before)" ;;
      sensor-2w) cmd="tapir-sensor -i IF --workers 2 --flows-out /dev/null --blocks-out DIR" ;;
      tcpdump) cmd="tcpdump -i IF -w FILE" ;;
      netsniff-ng) cmd="netsniff-ng --in IF --out FILE --silent" ;;
    esac
    target=$c
    [[ $c == trafgen ]] && target="trafgen max" || target="tcpreplay $c"
    base=$(awk -v c="$c" '$1 == "tcpdump" && $2 == c {print $7}' "$work/rows")
    ratio=$(awk -v a="$cpp" -v b="$base" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a / b; else print "n/a" }')
    dropped=$(awk -v s="$sent" -v r="$rx" 'BEGIN { if (s == "n/a" || r == "n/a") print "n/a"; else print s - r }')
    pct=$(awk -v s="$sent" -v r="$rx" 'BEGIN { if (s == "n/a" || r == "n/a" || s == 0) print "n/a"; else printf "%.2f", (s - r) * 100 / s }')
    echo "| \`$cmd\` | $target | $ach | $sent | $rx | $dropped | $pct | $cpu | $cpp | $rss | $kd | $kf | $ratio |"
  done <"$work/rows"
  if [[ -s $work/readpath ]]; then
    echo
    echo "Read path alone (TestLiveReadCost, sensor/capture; \`TAPIR_LIVE_COST=1 go test -run TestLiveReadCost -v ./sensor/capture/\`): the same trafgen traffic read by a LiveSource whose consumer does nothing (CPU of the test process), then by \`tcpdump -w /dev/null\`, twice:"
    echo
    sed 's/^/- /' "$work/readpath"
  fi
} >"$md"
cat "$md"
