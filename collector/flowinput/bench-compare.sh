#!/bin/sh
# bench-compare.sh: records per CPU-second decoding softflowd's recorded
# IPFIX datagrams (testdata/softflowd-echo-v10.bin, the shared
# echo-connections capture), tapir's flow input (Go benchmark: goflow2
# decoders + conversion to tapir records with Community IDs) beside
# goflow2 v2.2.6's own collector (UDP listener, decode, JSON to a file)
# fed the same datagrams over loopback in the same run. Prints the ratio.
set -eu
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-300}
TMP=$(mktemp -d)
trap 'kill $GF 2>/dev/null || true; rm -rf "$TMP"' EXIT
GOFLAGS=-mod=mod GOBIN=$TMP go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6

PORT=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$TMP/goflow2" -listen "netflow://127.0.0.1:$PORT" -format json -transport file -transport.file "$TMP/out.json" -addr 127.0.0.1:0 2>"$TMP/gf.log" &
GF=$!
sleep 1
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
C0=$(cpu $GF)
python3 - "$PORT" "$ROUNDS" <<'PY'
import socket, struct, sys, time
port, rounds = int(sys.argv[1]), int(sys.argv[2])
raw = open("testdata/softflowd-echo-v10.bin", "rb").read()
dgs, off = [], 0
while off + 4 <= len(raw):
    n = struct.unpack(">I", raw[off:off+4])[0]; dgs.append(raw[off+4:off+4+n]); off += 4 + n
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
for r in range(rounds):
    for i, d in enumerate(dgs):
        s.sendto(d, ("127.0.0.1", port))
    time.sleep(0.002)  # stay below the receiver's socket buffer
PY
sleep 2
C1=$(cpu $GF)
kill $GF; wait $GF 2>/dev/null || true
HZ=$(getconf CLK_TCK)
GF_RECS=$(wc -l < "$TMP/out.json")
GF_RATE=$(awk -v r="$GF_RECS" -v c0="$C0" -v c1="$C1" -v hz="$HZ" 'BEGIN{printf "%.0f", r/((c1-c0)/hz)}')

TAPIR_RATE=$(cd ../.. && go test ./collector/flowinput/ -run XXX -bench BenchmarkDecodeIPFIX -benchtime 2s -cpu 1 | awk '/records\/s/{for(i=1;i<=NF;i++) if($i=="records/s") print $(i-1)}')
echo "goflow2 v2.2.6 collector: $GF_RECS records for $(awk -v c0="$C0" -v c1="$C1" -v hz="$HZ" 'BEGIN{print (c1-c0)/hz}') CPU s = $GF_RATE records/CPU-s (receive+decode+JSON)"
echo "tapir flow input decode:  $TAPIR_RATE records/s on one core (decode+convert, no socket)"
awk -v a="$TAPIR_RATE" -v b="$GF_RATE" 'BEGIN{printf "ratio tapir/goflow2: %.2f\n", a/b}'
