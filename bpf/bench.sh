#!/usr/bin/env bash
# bpf/bench.sh: sensor CPU per second of traffic for a bulk-heavy mix at a
# fixed rate, with the userspace budget only (baseline) and with the eBPF
# cut-off, in the same run; and the per-packet cost of the tcx and cut-off
# programs from bpftool with kernel.bpf_stats_enabled=1.
#
# Needs root, iproute2, ethtool, iperf3, bpftool. Traffic stays inside two
# private network namespaces joined by a veth pair (offloads off, so the
# sensor sees wire-size packets as on a tap). Usage:
#   bpf/bench.sh [rate (iperf3 -b, default 300M)] [seconds (default 8)] [budget bytes (default 65536)]
set -euo pipefail
RATE=${1:-300M}
SECS=${2:-8}
BUDGET=${3:-65536}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/tapir-bpf-bench.XXXXXX)
ID=$$
C=tbc$ID P=tbp$ID CI=tbc${ID}i PI=tbp${ID}i
cleanup() {
	ip netns del "$C" 2>/dev/null || true
	ip netns del "$P" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
for t in ip ethtool iperf3 bpftool; do command -v $t >/dev/null || { echo "bench: $t missing" >&2; exit 1; }; done
(cd "$ROOT" && go build -o "$WORK/tapir-sensor" ./sensor/cmd/tapir-sensor)
ip netns add "$C"; ip netns add "$P"
ip link add "$CI" netns "$C" type veth peer name "$PI" netns "$P"
ip -n "$C" addr add 192.0.2.1/24 dev "$CI"; ip -n "$P" addr add 192.0.2.2/24 dev "$PI"
for x in "$C $CI" "$P $PI"; do
	set -- $x
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$1" ethtool -K "$2" gro off gso off tso off >/dev/null 2>&1 || true
	ip -n "$1" link set lo up; ip -n "$1" link set "$2" up
done
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; cleanup' EXIT
ip netns exec "$C" iperf3 -s -D -p 5201 --logfile "$WORK/iperf-s.log"
sleep 0.5
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# run MODE: starts the sensor, sends the mix, prints CPU seconds per
# second of traffic and packets the sensor read.
run() {
	local mode=$1 extra=()
	[ "$mode" = ebpf ] && extra=(--ebpf)
	rm -rf "$WORK/blocks-$mode"; mkdir -p "$WORK/blocks-$mode"
	ip netns exec "$C" "$WORK/tapir-sensor" -i "$CI" --budget "$BUDGET" "${extra[@]}" \
		--flows-out "$WORK/flows-$mode.json" --blocks-out "$WORK/blocks-$mode" --log-level warn \
		2>"$WORK/sensor-$mode.log" &
	local pid=$!
	sleep 1.5
	local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks $pid)
	# Bulk-heavy mix at a fixed total rate: 4 bulk TCP streams, plus
	# short request/response flows (1 KiB each way) in the background.
	ip netns exec "$P" iperf3 -c 192.0.2.1 -p 5201 -P 4 -b "$RATE" -t "$SECS" -J >"$WORK/iperf-$mode.json" &
	local ip=$!
	for i in $(seq 1 $((SECS * 20))); do
		ip netns exec "$P" bash -c 'exec 3<>/dev/tcp/192.0.2.1/9 2>/dev/null && head -c 1024 /dev/zero >&3; exec 3>&-' 2>/dev/null || true
		sleep 0.05
	done
	wait $ip
	local c1 t1; c1=$(cpu_ticks $pid); t1=$(date +%s.%N)
	if [ "$mode" = ebpf ]; then
		bpftool prog show -j >"$WORK/progs.json"
	fi
	kill -INT $pid; wait $pid || true
	local sent; sent=$(python3 -c "import json;d=json.load(open('$WORK/iperf-$mode.json'));print(d['end']['sum_sent']['bytes'])")
	python3 - "$mode" "$c0" "$c1" "$t0" "$t1" "$HZ" "$sent" "$WORK/flows-$mode.json" <<'PY'
import json, sys
mode, c0, c1, t0, t1, hz, sent, flows = sys.argv[1:]
cpu = (int(c1) - int(c0)) / int(hz)
secs = float(t1) - float(t0)
pk = st = 0
for line in open(flows):
    r = json.loads(line)
    pk += r["network"]["packets"]
    t = r.get("tapir", {})
    st += t.get("source", {}).get("stored_packets", 0) + t.get("destination", {}).get("stored_packets", 0)
print(f"{mode:9s} sensor CPU {cpu:6.3f} s over {secs:5.2f} s of traffic = {cpu/secs:.4f} CPU-s/s; iperf3 sent {int(sent)/1e6:.0f} MB; flow records: {pk} packets seen, {st} stored")
with open(flows + ".cpu", "w") as f:
    f.write(str(cpu / secs))
PY
}

echo "bulk-heavy mix: iperf3 -P 4 -b $RATE for ${SECS}s + 20 short TCP flows/s; budget $BUDGET bytes per flow direction"
run userspace
run ebpf
python3 - "$WORK/flows-userspace.json.cpu" "$WORK/flows-ebpf.json.cpu" "$WORK/progs.json" <<'PY'
import json, sys
u = float(open(sys.argv[1]).read()); e = float(open(sys.argv[2]).read())
print(f"sensor CPU ratio userspace/ebpf: {u/e:.1f}x less CPU with the eBPF cut-off")
for p in json.load(open(sys.argv[3])):
    if p.get("name") in ("tapir_tcx", "tapir_cutoff") and p.get("run_cnt"):
        print(f"{p['name']:13s} (id {p['id']}): {p['run_cnt']} runs, {p['run_time_ns']/p['run_cnt']:.1f} ns per packet (bpftool prog show, bpf_stats_enabled=1)")
PY
grep -i "ebpf\|error" "$WORK/sensor-ebpf.log" | head -3 || true
