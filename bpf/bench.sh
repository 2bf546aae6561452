#!/usr/bin/env bash
# bpf/bench.sh: the CPU cost of capturing a bulk-heavy mix at a fixed rate
# with the userspace budget only (baseline) and with the eBPF cut-off, in
# the same run, counted two ways:
#
#   sensor process   utime+stime of tapir-sensor (/proc/PID/stat)
#   whole machine    busy time of all CPUs from /proc/stat (user, nice,
#                    system, irq, softirq, steal) over the same window,
#                    minus the same figure for the traffic alone (a run
#                    with no sensor): what the sensor costs the machine,
#                    kernel included (softirq work of the packet socket:
#                    the socket filter, the copy into the ring, the
#                    wakeups). The eBPF program's own run time (bpftool,
#                    kernel.bpf_stats_enabled=1) is in that softirq time
#                    and is also shown alone.
#
# The phases (traffic alone, userspace, ebpf) are interleaved ROUNDS
# times (default 2) and each figure is the median over rounds. On a
# machine shared with other work the whole-machine figures carry its
# noise: compare rounds.
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
ip netns exec "$C" iperf3 -s -D -p 5201 -I "$WORK/iperf-s.pid" --logfile "$WORK/iperf-s.log"
sleep 0.5
HZ=$(getconf CLK_TCK)

ROUNDS=${ROUNDS:-2}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# busy_ticks: jiffies all CPUs spent busy (everything but idle and iowait).
# path_ticks: CPU of the processes the traffic runs through: the iperf3
# server and the ksoftirqd threads (softirq work done in a task's context,
# the packet socket's filter and ring copy included, is charged to that
# task without CONFIG_IRQ_TIME_ACCOUNTING, and to its softirq time with it).
path_ticks() {
	local t=0 p
	for p in $(cat "$WORK/iperf-s.pid") $(pgrep -x 'ksoftirqd/[0-9]+'); do
		t=$((t + $(cpu_ticks "$p")))
	done
	echo $t
}
busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
softirq_ticks() { awk '/^cpu / {print $8}' /proc/stat; }
# prog_stats: "run_cnt run_time_ns" of the loaded tapir_cutoff programs.
prog_stats() {
	bpftool prog show -j | python3 -c 'import json,sys
c=t=0
for p in json.load(sys.stdin):
    if p.get("name")=="tapir_cutoff":
        c+=p.get("run_cnt",0); t+=p.get("run_time_ns",0)
print(c,t)'
}

# traffic: the bulk-heavy mix at a fixed total rate: 4 bulk TCP streams,
# plus short request/response flows (1 KiB each way) in the background.
traffic() {
	# The client's CPU (its rusage) goes to $WORK/client-$1.
	python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"))
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$WORK/iperf-$1.json" ip netns exec "$P" iperf3 -c 192.0.2.1 -p 5201 -P 4 -b "$RATE" -t "$SECS" -J >"$WORK/client-$1" &
	local ip=$!
	for i in $(seq 1 $((SECS * 20))); do
		ip netns exec "$P" bash -c 'exec 3<>/dev/tcp/192.0.2.1/9 2>/dev/null && head -c 1024 /dev/zero >&3; exec 3>&-' 2>/dev/null || true
		sleep 0.05
	done
	wait $ip
}

# run MODE ROUND: MODE none (traffic alone), userspace or ebpf. Appends
# "mode round secs sensor_cpu busy softirq prog_runs prog_ns packets stored
# path_ticks client_cpu_s"
# to $WORK/rows.
run() {
	local mode=$1 round=$2 extra=() pid=
	[ "$mode" = ebpf ] && extra=(--ebpf)
	if [ "$mode" != none ]; then
		rm -rf "$WORK/blocks-$mode"; mkdir -p "$WORK/blocks-$mode"
		ip netns exec "$C" "$WORK/tapir-sensor" -i "$CI" --budget "$BUDGET" "${extra[@]}" \
			--flows-out "$WORK/flows-$mode.json" --blocks-out "$WORK/blocks-$mode" --log-level warn \
			2>"$WORK/sensor-$mode.log" &
		pid=$!
		sleep 1.5
	fi
	local t0 c0=0 b0 s0 p0 q0; t0=$(date +%s.%N); b0=$(busy_ticks); s0=$(softirq_ticks); p0=$(prog_stats); q0=$(path_ticks)
	[ -n "$pid" ] && c0=$(cpu_ticks $pid)
	traffic "$mode"
	local c1=0 t1 b1 s1 p1 q1; b1=$(busy_ticks); s1=$(softirq_ticks); p1=$(prog_stats); q1=$(path_ticks); t1=$(date +%s.%N)
	[ -n "$pid" ] && c1=$(cpu_ticks $pid)
	local pk=0 st=0
	if [ -n "$pid" ]; then
		kill -INT $pid; wait $pid || true
		read -r pk st < <(python3 -c 'import json,sys
pk=st=0
for line in open(sys.argv[1]):
    r=json.loads(line); pk+=r["network"]["packets"]; t=r.get("tapir",{})
    st+=t.get("source",{}).get("stored_packets",0)+t.get("destination",{}).get("stored_packets",0)
print(pk,st)' "$WORK/flows-$mode.json")
	fi
	read -r pc0 pt0 <<<"$p0"; read -r pc1 pt1 <<<"$p1"
	echo "$mode $round $(python3 -c "print(float('$t1')-float('$t0'))") $(( (c1 - c0) )) $(( b1 - b0 )) $(( s1 - s0 )) $(( pc1 - pc0 )) $(( pt1 - pt0 )) $pk $st $(( q1 - q0 )) $(cat "$WORK/client-$mode")" >>"$WORK/rows"
	echo "  round $round $mode done" >&2
}

echo "bulk-heavy mix: iperf3 -P 4 -b $RATE for ${SECS}s + 20 short TCP flows/s; budget $BUDGET bytes per flow direction; $ROUNDS rounds; $(nproc) CPUs"
: >"$WORK/rows"
for r in $(seq 1 "$ROUNDS"); do
	run none "$r"
	run userspace "$r"
	run ebpf "$r"
done
python3 - "$WORK/rows" "$HZ" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
hz = int(sys.argv[2])
by = {}
for m, r, secs, cpu, busy, sirq, runs, ns, pk, st, path, client in rows:
    by.setdefault(m, []).append(dict(secs=float(secs), cpu=int(cpu)/hz, busy=int(busy)/hz, sirq=int(sirq)/hz,
                                     runs=int(runs), ns=int(ns), pk=int(pk), st=int(st),
                                     path=int(path)/hz + float(client)))
med = lambda m, f: statistics.median(f(x) for x in by[m])
base = med("none", lambda x: x["busy"] / x["secs"])
base_sirq = med("none", lambda x: x["sirq"] / x["secs"])
base_path = med("none", lambda x: x["path"] / x["secs"])
print(f"traffic alone: iperf3 client+server+ksoftirqd {base_path:.4f} CPU-s/s; whole machine {base:.3f} CPU-s/s busy, softirq {base_sirq:.3f} (median of {len(by['none'])})")
out = {}
for m in ("userspace", "ebpf"):
    for x in by[m]:
        print(f"  {m:9s} round: {x['secs']:.1f} s, sensor {x['cpu']/x['secs']:.4f} CPU-s/s, whole machine {x['busy']/x['secs']:.3f} CPU-s/s "
              f"(softirq {x['sirq']/x['secs']:.3f}), traffic path {x['path']/x['secs']:.4f} CPU-s/s, program {x['ns']/1e9/x['secs']:.4f} CPU-s/s over {x['runs']} runs, "
              f"{x['pk']} packets seen, {x['st']} stored")
    proc = med(m, lambda x: x["cpu"] / x["secs"])
    prog = med(m, lambda x: x["ns"] / 1e9 / x["secs"])
    whole = med(m, lambda x: x["busy"] / x["secs"]) - base
    sirq = med(m, lambda x: x["sirq"] / x["secs"]) - base_sirq
    per = med(m, lambda x: x["ns"] / x["runs"] if x["runs"] else 0)
    path = med(m, lambda x: (x["path"] + x["cpu"]) / x["secs"]) - base_path
    out[m] = (proc, prog, whole, path)
    print(f"{m:9s} sensor process {proc:.4f} CPU-s/s; eBPF program {prog:.4f} CPU-s/s ({per:.0f} ns/run); "
          f"process + program {proc + prog:.4f}; sensor + traffic path minus traffic alone {path:.4f} CPU-s/s; "
          f"whole machine minus traffic alone {whole:.4f} CPU-s/s (softirq {sirq:+.4f})")
(up, ug, uw, ut), (ep, eg, ew, et) = out["userspace"], out["ebpf"]
ratio = lambda a, b: f"{a/b:.1f}x" if b > 0 else "n/a"
print(f"userspace/ebpf: sensor process {ratio(up, ep)}, process + program {ratio(up+ug, ep+eg)}, "
      f"sensor + kernel (traffic path) {ratio(ut, et)}, whole machine {ratio(uw, ew)} less CPU with the cut-off")
PY
grep -i "ebpf\|error" "$WORK/sensor-ebpf.log" | head -3 || true
