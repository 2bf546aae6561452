package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// tsharkConvs sums tshark's IP frames by tsharkoracle.Key. damaged says
// the file is known to be damaged: tshark's exit status is then ignored
// and what it printed before the damage is used.
func tsharkConvs(t *testing.T, path string, damaged bool) map[tsharkoracle.Key]tsharkoracle.Sum {
	t.Helper()
	frames, ok := tsharkoracle.Frames(t, path)
	if !ok && !damaged {
		t.Fatalf("tshark failed on %s", path)
	}
	return tsharkoracle.Sums(frames)
}

// TestFlowTotalsMatchTshark runs every shared capture through the sensor
// engine and compares packets and bytes per 5-tuple with tshark's.
func TestFlowTotalsMatchTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	var compared atomic.Int32
	t.Run("captures", func(t *testing.T) {
		for _, path := range testenv.Captures(t) {
			rel := testenv.Rel(t, path)
			t.Run(rel, func(t *testing.T) {
				plain := testenv.Plain(t, path)
				if !testenv.TsharkReadable(t, plain) {
					t.Skipf("tshark cannot read %s (pcapng conformance case); no oracle", rel)
				}
				t.Parallel()
				sink, st, runErr := runFile(t, plain, longTimeouts())
				if runErr != nil {
					// A damaged file: tshark must find it damaged too, and
					// both must agree on what came before the damage.
					if exec.Command(testenv.Tool(t, "tshark"), "-r", plain).Run() == nil {
						t.Fatalf("sensor failed on a file tshark reads: %v", runErr)
					}
					t.Logf("damaged file, as tshark agrees: %v", runErr)
				}
				got := tsharkoracle.RecordSums(sink.finals())
				want := tsharkConvs(t, plain, runErr != nil)
				addTunnelConvs(t, plain, want)
				var diffs []string
				for k, w := range want {
					if g := got[k]; g != w {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark %d pkts %d bytes", k, g.Packets, g.Bytes, w.Packets, w.Bytes))
					}
				}
				for k, g := range got {
					if _, ok := want[k]; !ok {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark none", k, g.Packets, g.Bytes))
					}
				}
				sort.Strings(diffs)
				if len(diffs) > 0 {
					t.Errorf("%d of %d conversations differ:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"))
				}
				if st.Packets == 0 && len(want) > 0 {
					t.Error("engine read no packets")
				}
				compared.Add(1)
			})
		}
	})
	t.Logf("compared %d captures", compared.Load())
	if compared.Load() < 60 {
		t.Errorf("only %d captures compared", compared.Load())
	}
}

// outerHeader is the outermost IP header of a frame as tshark prints it.
type outerHeader struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

// tsharkOuters returns each frame's outermost IP header, by frame number
// (frames without IP are left out).
func tsharkOuters(t *testing.T, path string) map[int]outerHeader {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "tshark"), "-n", "-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto",
		"-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ipv6.nxt", "-e", "udp.srcport", "-e", "udp.dstport").Output()
	outers := map[int]outerHeader{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < 10 {
			f = append(f, "")
		}
		protos := strings.Split(f[1], ":")
		i4, i6 := slices.Index(protos, "ip"), slices.Index(protos, "ipv6")
		var h outerHeader
		var err error
		switch {
		case i4 >= 0 && (i6 < 0 || i4 < i6):
			h.src, err = netip.ParseAddr(f[2])
			h.dst, _ = netip.ParseAddr(f[3])
			h.proto = uint8(atoiOr0(f[4]))
		case i6 >= 0:
			h.src, err = netip.ParseAddr(f[5])
			h.dst, _ = netip.ParseAddr(f[6])
			h.proto = uint8(atoiOr0(f[7]))
		default:
			continue
		}
		if err != nil {
			continue
		}
		if h.proto == 17 {
			h.sport, h.dport = uint16(atoiOr0(f[8])), uint16(atoiOr0(f[9]))
		}
		outers[atoiOr0(f[0])] = h
	}
	return outers
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// addTunnelConvs adds to want the sensor's tunnel flows as tshark sees
// them: every frame whose flow (tsharkoracle's innermost connection)
// lies inside a tunnel is counted once more on its outermost IP
// header's 5-tuple (ports for UDP tunnels), as the flow of the tunnel's
// own connection. Frames the sensor keeps on the tunnel's tuple (not
// taken apart) are already there.
func addTunnelConvs(t *testing.T, path string, want map[tsharkoracle.Key]tsharkoracle.Sum) {
	t.Helper()
	frames, _ := tsharkoracle.Frames(t, path)
	outers := tsharkOuters(t, path)
	for i := range frames {
		fr := &frames[i]
		o, ok := outers[fr.Number]
		if !fr.IP || !ok {
			continue
		}
		in := fr.Tuple
		if in.Src.Netip(in.Family) == o.src && in.Dst.Netip(in.Family) == o.dst {
			continue // not in a tunnel (IPv6 extension headers may hide the protocol)
		}
		k := tsharkoracle.MakeKey(o.proto, o.src, o.dst, o.sport, o.dport)
		s := want[k]
		s.Packets++
		s.Bytes += uint64(fr.Len)
		want[k] = s
	}
}
