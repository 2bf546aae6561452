package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testdata"
)

// convKey is a direction-free 5-tuple without VLAN, as both tapir's
// records and tshark's fields are summed by it. ICMP and port-less
// protocols sum by address pair and protocol.
type convKey struct {
	proto uint8
	a, b  netip.AddrPort
}

type convSum struct{ packets, bytes uint64 }

func makeConvKey(proto uint8, src, dst netip.Addr, sport, dport uint16) convKey {
	if !flow.HasPorts(proto) {
		sport, dport = 0, 0
	}
	a, b := netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return convKey{proto, a, b}
}

func (k convKey) String() string {
	return fmt.Sprintf("%s %s <-> %s", flow.ProtoName(k.proto), k.a, k.b)
}

// tapirConvs sums final records by convKey.
func tapirConvs(recs []flow.Record) map[convKey]convSum {
	out := map[convKey]convSum{}
	for _, r := range recs {
		t := r.Tuple
		if t.Family == flow.FamilyLink {
			continue
		}
		k := makeConvKey(t.Proto, t.Src.Netip(t.Family), t.Dst.Netip(t.Family), t.SrcPort, t.DstPort)
		s := out[k]
		s.packets += r.Source.Packets + r.Destination.Packets
		s.bytes += r.Source.Bytes + r.Destination.Bytes
		out[k] = s
	}
	return out
}

var tsharkFields = []string{
	"frame.len", "ip.src", "ip.dst", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.nxt",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
	"ip.id", "ip.frag_offset", "ip.flags.mf", "ipv6.fraghdr.ident", "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
	"ipv6.fraghdr.nxt",
}

// tsharkConvs sums frame.len per convKey from tshark's per-packet fields,
// with IP reassembly off so that each fragment is its own frame. The
// ports of a non-first fragment are taken from the first fragment of the
// same datagram (same addresses, protocol and IP ID), which is what
// "non-first fragments count in their datagram's flow" means. Only the
// outermost IP header and a transport header directly inside it count
// (tapir keys tunnels on their outer header).
//
// damaged says the file is known to be damaged: tshark's exit status is
// then ignored and what it printed before the damage is used.
func tsharkConvs(t *testing.T, path string, damaged bool) map[convKey]convSum {
	t.Helper()
	args := []string{"-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-o", "tcp.try_heuristic_first:FALSE", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(testdata.Tool(t, "tshark"), args...).Output()
	if err != nil && !damaged {
		t.Fatalf("tshark %s: %v", path, err)
	}
	type fragID struct {
		proto    uint8
		src, dst netip.Addr
		id       string
	}
	type row struct {
		k      convKey
		frag   *fragID
		first  bool
		length uint64
	}
	ports := map[fragID][2]uint16{}
	var rows []row
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < len(tsharkFields) {
			f = append(f, "")
		}
		get := func(name string) string {
			for i, n := range tsharkFields {
				if n == name {
					return f[i]
				}
			}
			panic(name)
		}
		length, _ := strconv.ParseUint(get("frame.len"), 10, 64)
		var src, dst netip.Addr
		var proto uint8
		var fid *fragID
		first := true
		switch {
		case get("ip.src") != "":
			src, dst = netip.MustParseAddr(get("ip.src")), netip.MustParseAddr(get("ip.dst"))
			proto = uint8(atoi(get("ip.proto")))
			off := atoi(get("ip.frag_offset"))
			if off != 0 || get("ip.flags.mf") == "1" || get("ip.flags.mf") == "True" {
				fid = &fragID{proto, src, dst, get("ip.id")}
				first = off == 0
			}
		case get("ipv6.src") != "":
			src, dst = netip.MustParseAddr(get("ipv6.src")), netip.MustParseAddr(get("ipv6.dst"))
			proto = uint8(atoi(get("ipv6.nxt")))
			if id := get("ipv6.fraghdr.ident"); id != "" {
				proto = uint8(atoi(get("ipv6.fraghdr.nxt")))
				fid = &fragID{proto, src, dst, id}
				first = atoi(get("ipv6.fraghdr.offset")) == 0
			}
		default:
			continue // not IP: tapir keeps it in link-layer pseudo flows
		}
		var sport, dport uint16
		switch proto {
		case flow.ProtoTCP:
			sport, dport = uint16(atoi(get("tcp.srcport"))), uint16(atoi(get("tcp.dstport")))
		case flow.ProtoUDP:
			sport, dport = uint16(atoi(get("udp.srcport"))), uint16(atoi(get("udp.dstport")))
		case flow.ProtoSCTP:
			sport, dport = uint16(atoi(get("sctp.srcport"))), uint16(atoi(get("sctp.dstport")))
		}
		if fid != nil && first {
			ports[*fid] = [2]uint16{sport, dport}
		}
		rows = append(rows, row{k: makeConvKey(proto, src, dst, sport, dport), frag: fid, first: first, length: length})
	}
	sums := map[convKey]convSum{}
	for _, r := range rows {
		k := r.k
		if r.frag != nil && !r.first {
			if p, ok := ports[*r.frag]; ok {
				k = makeConvKey(r.frag.proto, r.frag.src, r.frag.dst, p[0], p[1])
			}
		}
		s := sums[k]
		s.packets++
		s.bytes += r.length
		sums[k] = s
	}
	return sums
}

func atoi(s string) int {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	n, _ := strconv.ParseInt(s, 0, 64)
	return int(n)
}

// TestFlowTotalsMatchTshark runs every shared capture through the sensor
// engine and compares packets and bytes per 5-tuple with tshark's.
func TestFlowTotalsMatchTshark(t *testing.T) {
	testdata.Tool(t, "tshark")
	var compared atomic.Int32
	t.Run("captures", func(t *testing.T) {
		for _, path := range testdata.Captures(t) {
			rel := testdata.Rel(t, path)
			t.Run(rel, func(t *testing.T) {
				plain := testdata.Plain(t, path)
				if !testdata.TsharkReadable(t, plain) {
					t.Skipf("tshark cannot read %s (pcapng conformance case); no oracle", rel)
				}
				t.Parallel()
				sink, st, runErr := runFile(t, plain, longTimeouts())
				if runErr != nil {
					// A damaged file: tshark must find it damaged too, and
					// both must agree on what came before the damage.
					if exec.Command(testdata.Tool(t, "tshark"), "-r", plain).Run() == nil {
						t.Fatalf("sensor failed on a file tshark reads: %v", runErr)
					}
					t.Logf("damaged file, as tshark agrees: %v", runErr)
				}
				got := tapirConvs(sink.finals())
				want := tsharkConvs(t, plain, runErr != nil)
				var diffs []string
				for k, w := range want {
					if g := got[k]; g != w {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark %d pkts %d bytes", k, g.packets, g.bytes, w.packets, w.bytes))
					}
				}
				for k, g := range got {
					if _, ok := want[k]; !ok {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark none", k, g.packets, g.bytes))
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
