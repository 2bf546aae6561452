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
#   kernel capture   with perf (PERF=1, the default when perf is installed):
#                    CPU time sampled system-wide (perf record -a -g) in
#                    tpacket_rcv and everything it calls (the socket
#                    filter, the copy into the ring, the block bookkeeping
#                    and wakeups) and in tapir's eBPF programs wherever
#                    they run. Unlike the
#                    whole-machine figure it does not move with other work
#                    on the machine (unless that work captures packets too).
#                    sensor process + kernel capture is the whole cost of
#                    each path.
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
# Environment: ROUNDS (3), PERF (1 when perf is installed), SENSOR (a
# tapir-sensor binary to run instead of building this tree's), PERF_KEEP
# (a directory that keeps each round's perf.data).
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
# SENSOR=path runs a tapir-sensor built elsewhere (another commit) instead.
if [ -n "${SENSOR:-}" ]; then
	cp "$SENSOR" "$WORK/tapir-sensor"
else
	(cd "$ROOT" && go build -o "$WORK/tapir-sensor" ./cmd/tapir-sensor)
fi
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
# bpf_stats costs every program run two clock reads (about 60 ns here):
# off for the measured rounds, on for one extra ebpf-stats round that
# only reports the program's run time.
sysctl -qw kernel.bpf_stats_enabled=0
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; cleanup' EXIT
ip netns exec "$C" iperf3 -s -D -p 5201 -I "$WORK/iperf-s.pid" --logfile "$WORK/iperf-s.log"
sleep 0.5
HZ=$(getconf CLK_TCK)

ROUNDS=${ROUNDS:-3}
PERF=${PERF:-$(command -v perf >/dev/null && echo 1 || echo 0)}
PERF_HZ=499

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
# path_ticks client_cpu_s kcap_samples kprog_samples samples"
# to $WORK/rows.
run() {
	local mode=$1 round=$2 extra=() pid=
	case $mode in ebpf | ebpf-stats) extra=(--ebpf) ;; esac
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
	local perfpid=
	if [ "$PERF" = 1 ]; then
		perf record -q -a -g -F $PERF_HZ -o "$WORK/perf.data" -- sleep 3600 2>/dev/null &
		perfpid=$!
	fi
	traffic "$mode"
	local c1=0 t1 b1 s1 p1 q1; b1=$(busy_ticks); s1=$(softirq_ticks); p1=$(prog_stats); q1=$(path_ticks); t1=$(date +%s.%N)
	local kcap="0 0 0"
	if [ -n "$perfpid" ]; then
		kill -INT $perfpid; wait $perfpid || true
		# PERF_KEEP=DIR keeps each round's profile for perf report.
		[ -n "${PERF_KEEP:-}" ] && cp "$WORK/perf.data" "$PERF_KEEP/perf-$mode-$round.data"
		# Samples (all CPUs) under tpacket_rcv or in one of tapir's eBPF
		# programs (a tcx program of another build runs outside
		# tpacket_rcv), of those in tapir's programs, and all samples.
		kcap=$(perf script -i "$WORK/perf.data" -F comm,ip,sym 2>/dev/null | python3 -c 'import sys
cap = prog = n = 0
frames = []
def done():
    global cap, prog, n
    if frames:
        n += 1
        ours = any(f.startswith("bpf_prog_") and "tapir" in f for f in frames)
        if "tpacket_rcv" in frames or ours:
            cap += 1
        if ours:
            prog += 1
for line in sys.stdin:
    if not line.strip():
        done(); frames.clear(); continue
    if line[0] in " \t":
        parts = line.split(None, 1)
        if len(parts) == 2:
            frames.append(parts[1].strip())
done()
print(cap, prog, n)')
	fi
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
	echo "$mode $round $(python3 -c "print(float('$t1')-float('$t0'))") $(( (c1 - c0) )) $(( b1 - b0 )) $(( s1 - s0 )) $(( pc1 - pc0 )) $(( pt1 - pt0 )) $pk $st $(( q1 - q0 )) $(cat "$WORK/client-$mode") $kcap" >>"$WORK/rows"
	echo "  round $round $mode done" >&2
}

echo "bulk-heavy mix: iperf3 -P 4 -b $RATE for ${SECS}s + 20 short TCP flows/s; budget $BUDGET bytes per flow direction; $ROUNDS rounds; $(nproc) CPUs"
: >"$WORK/rows"
for r in $(seq 1 "$ROUNDS"); do
	run none "$r"
	run userspace "$r"
	run ebpf "$r"
done
sysctl -qw kernel.bpf_stats_enabled=1
run ebpf-stats 1
sysctl -qw kernel.bpf_stats_enabled=0
python3 - "$WORK/rows" "$HZ" "$PERF_HZ" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
hz, perf_hz = int(sys.argv[2]), int(sys.argv[3])
by = {}
for m, r, secs, cpu, busy, sirq, runs, ns, pk, st, path, client, kcap, kprog, nsamp in rows:
    by.setdefault(m, []).append(dict(secs=float(secs), cpu=int(cpu)/hz, busy=int(busy)/hz, sirq=int(sirq)/hz,
                                     prog=int(ns)/1e9, runs=int(runs), pk=int(pk), st=int(st),
                                     path=int(path)/hz + float(client),
                                     kcap=int(kcap)/perf_hz, kprog=int(kprog)/perf_hz))
med = lambda m, f: statistics.median(f(x) for x in by[m])
n = len(by["none"])
base_busy = med("none", lambda x: x["busy"] / x["secs"])
base_path = med("none", lambda x: x["path"] / x["secs"])
print(f"traffic alone (median of {n}): whole machine {base_busy:.3f} CPU-s/s busy; iperf3 client+server+ksoftirqd {base_path:.4f} CPU-s/s")
print("per round: CPU seconds over the run, and ns per packet the sensor saw")
out = {}
for m in ("userspace", "ebpf"):
    for x in by[m]:
        pk = max(x["pk"], 1)
        ns = lambda v: v * 1e9 / pk
        print(f"  {m:9s} {x['secs']:5.1f} s, {x['pk']} packets seen, {x['st']} stored: sensor process {x['cpu']:.3f} s ({ns(x['cpu']):.0f} ns/pkt); "
              f"kernel capture path (perf) {x['kcap']:.3f} s ({ns(x['kcap']):.0f}), of it eBPF program {x['kprog']:.3f} s sampled; "
              f"whole machine {x['busy']/x['secs']:.3f} CPU-s/s (traffic alone {base_busy:.3f})")
    per = lambda f: med(m, lambda x: f(x) * 1e9 / max(x["pk"], 1))
    proc, kcap = per(lambda x: x["cpu"]), per(lambda x: x["kcap"])
    both = per(lambda x: x["cpu"] + x["kcap"])
    whole = med(m, lambda x: x["busy"] / x["secs"]) - base_busy
    sampled = per(lambda x: x["kprog"])
    out[m] = (proc, both, whole)
    print(f"{m:9s} median ns per packet: sensor process {proc:.0f}; kernel capture path {kcap:.0f} (eBPF program {sampled:.0f} of it, sampled); "
          f"process + kernel capture path {both:.0f}; whole machine minus traffic alone {whole:+.3f} CPU-s/s")
for x in by.get("ebpf-stats", []):
    print(f"ebpf with kernel.bpf_stats_enabled=1 (one round): tapir_cutoff {x['runs']} runs, {x['prog']*1e9/max(x['runs'],1):.0f} ns per run by run_time_ns "
          f"(the stats' own clock reads included); {x['prog']:.3f} CPU-s over {x['secs']:.1f} s")
(up, ub, uw), (ep, eb, ew) = out["userspace"], out["ebpf"]
ratio = lambda a, b: f"{a/b:.1f}x" if b > 0 else "n/a"
print(f"userspace/ebpf, CPU per packet: sensor process {ratio(up, ep)}; "
      f"sensor process + kernel capture path (perf; the eBPF program, the copy into the ring and its bookkeeping) {ratio(ub, eb)}; "
      f"whole machine {ratio(uw, ew)} (moves with the other work on this shared machine)")
PY
grep -i "ebpf\|error" "$WORK/sensor-ebpf.log" | head -3 || true
