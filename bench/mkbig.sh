#!/usr/bin/env bash
# mkbig.sh: builds the large benchmark input from the shared captures and
# prints its path. At least MIN_PACKETS packets (default 10 million).
#
# The base is zeek/echo-connections.pcap.gz (82,582 packets, 500 TCP
# connections) followed by every other classic Ethernet pcap of the shared
# captures (ssh.pcap, wikipedia.pcap, the VLAN/MPLS/fragment/ICMP/SCTP
# traces ...). Copy N of the base has its IPv4/IPv6 addresses randomized
# with `tcprewrite --seed=N` (one consistent mapping per copy, so both
# directions of a flow stay one flow and each copy adds new flows). The
# copies are concatenated with `mergecap -a`, then `benchtool retime` makes
# the timestamps continuous (never backwards, gaps capped at 1 s): the
# result is one ordered capture of ~25 minutes of traffic in which flows
# start, end and time out as they would on a link.
#
# Cached: $BENCH_CACHE/big.pcap (default .cache/bench/ under the repo) is
# reused when present and its .ok stamp matches MIN_PACKETS. Remove it to
# rebuild. ~1 GB for 10M packets; needs ~2x that free while building.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pcaps=${TAPIR_PCAPS:-$root/../shared/pcaps}
cache=${BENCH_CACHE:-$root/.cache/bench}
min=${MIN_PACKETS:-10000000}
big=$cache/big.pcap
stamp=$big.ok

log() { echo "mkbig: $*" >&2; }

if [[ -s $big && -f $stamp && $(cat "$stamp") == "$min" ]]; then
  log "reusing $big ($(du -h "$big" | cut -f1))"
  echo "$big"
  exit 0
fi

for t in tcprewrite mergecap capinfos go; do
  command -v "$t" >/dev/null || { log "$t not found (make deps installs it)"; exit 1; }
done
[[ -d $pcaps ]] || { log "shared captures not found at $pcaps (set TAPIR_PCAPS)"; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/mkbig.XXXXXX")
trap 'rm -rf "$work"' EXIT

benchtool=$work/benchtool
(cd "$root" && go build -o "$benchtool" ./bench/benchtool)

# Base: echo-connections first, then the other classic Ethernet pcaps.
inputs=("$work/echo.pcap")
zcat "$pcaps/zeek/echo-connections.pcap.gz" >"$work/echo.pcap"
while IFS= read -r f; do
  enc=$(capinfos -T -r -E "$f" 2>/dev/null | cut -f2 || true)
  n=$(capinfos -T -r -c "$f" 2>/dev/null | cut -f2 || true)
  if [[ $enc == ether && ${n:-0} -gt 0 ]]; then
    inputs+=("$f")
  fi
done < <(find "$pcaps" -name '*.pcap' -type f | sort)
mergecap -a -F pcap -w "$work/base.pcap" "${inputs[@]}"
base_pkts=$(capinfos -T -r -c "$work/base.pcap" | cut -f2)
copies=$(((min + base_pkts - 1) / base_pkts))
log "base: ${#inputs[@]} captures, $base_pkts packets; $copies copies for >= $min packets"

# Disk check: the copies plus the result take ~2x the final size.
need=$(($(stat -c %s "$work/base.pcap") * copies * 2 / 1024))
avail=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
if ((avail < need)); then
  log "not enough disk under $cache: need ~$((need / 1024)) MiB, have $((avail / 1024)) MiB"
  exit 1
fi

start=$SECONDS
seq 1 "$copies" | xargs -P "$(nproc)" -I{} \
  tcprewrite --seed={} --fixcsum -i "$work/base.pcap" -o "$work/copy-{}.pcap" \
  2> >(grep -v -e '^Warning in tcpedit' -e '^Unable to checksum' >&2)
log "tcprewrite: $((SECONDS - start)) s"

files=()
for i in $(seq 1 "$copies"); do files+=("$work/copy-$i.pcap"); done
rm -f "$big" "$stamp"
mergecap -a -F pcap -w - "${files[@]}" | "$benchtool" retime -gap 1s >"$big.tmp"
mv "$big.tmp" "$big"
echo "$min" >"$stamp"
log "built $big: $(capinfos -T -r -c "$big" | cut -f2) packets, $(du -h "$big" | cut -f1), $((SECONDS - start)) s"
echo "$big"
