package flowtable

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testdata"

	"github.com/tapir-sensor/tapir/flow"
)

// cmpKey is the direction-free identity the tshark comparison uses:
// protocol, endpoints ordered, ports only for TCP, UDP and SCTP. VLANs and
// ICMP types are left out (all such flows of an address pair add up).
type cmpKey struct {
	proto uint8
	a, b  netip.AddrPort
}

func makeCmpKey(proto uint8, src, dst netip.Addr, sp, dp uint16) cmpKey {
	if !flow.HasPorts(proto) {
		sp, dp = 0, 0
	}
	a, b := netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return cmpKey{proto: proto, a: a, b: b}
}

func (k cmpKey) String() string { return fmt.Sprintf("%s %s %s", flow.ProtoName(k.proto), k.a, k.b) }

type counts struct{ packets, bytes uint64 }

var tsharkFields = []string{
	"frame.number", "frame.len", // 0 1
	"ip.src", "ip.dst", "ipv6.src", "ipv6.dst", // 2-5
	"ip.proto", "ipv6.nxt", // 6 7
	"ip.id", "ip.frag_offset", "ip.flags.mf", // 8-10
	"ipv6.fraghdr.ident", "ipv6.fraghdr.offset", "ipv6.fraghdr.nxt", // 11-13
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport", // 14-19
	"icmpv6.type", // 20
}

// tsharkFlows computes the oracle: frame.len and packets summed per
// cmpKey, with IP reassembly off so that tshark shows the ports of first
// fragments; non-first fragments are assigned to their datagram (same
// addresses, protocol and fragment ID) using the ports tshark shows for
// the datagram's offset-0 fragment, or no ports when that fragment is
// missing. It also returns the number of IP frames and of non-first
// fragments whose first fragment is in the file.
func tsharkFlows(tb testing.TB, tshark, path string) (map[cmpKey]counts, int, int, error) {
	args := []string{"-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE", "-r", path,
		"-T", "fields", "-E", "occurrence=f", "-E", "separator=/t"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		return nil, 0, 0, err
	}
	type row struct {
		key      cmpKey
		length   uint64
		dgram    string // datagram identity for fragments ("" otherwise)
		first    bool   // offset-0 fragment
		src, dst netip.Addr
		proto    uint8
	}
	var rows []row
	dgramPorts := map[string][2]uint16{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < len(tsharkFields) {
			f = append(f, "")
		}
		var r row
		var proto int
		switch {
		case f[2] != "":
			r.src, _ = netip.ParseAddr(f[2])
			r.dst, _ = netip.ParseAddr(f[3])
			proto, _ = strconv.Atoi(f[6])
			off, _ := strconv.Atoi(f[9])
			if off != 0 || f[10] == "1" || f[10] == "True" {
				r.dgram = fmt.Sprint(4, f[2], f[3], proto, f[8])
				r.first = off == 0
			}
		case f[4] != "":
			r.src, _ = netip.ParseAddr(f[4])
			r.dst, _ = netip.ParseAddr(f[5])
			switch {
			case f[20] != "":
				proto = flow.ProtoICMPv6
			case f[14] != "":
				proto = flow.ProtoTCP
			case f[16] != "":
				proto = flow.ProtoUDP
			case f[18] != "":
				proto = flow.ProtoSCTP
			case f[13] != "":
				proto, _ = strconv.Atoi(f[13])
			default:
				proto, _ = strconv.Atoi(f[7])
			}
			if f[11] != "" {
				off, _ := strconv.Atoi(f[12])
				r.dgram = fmt.Sprint(6, f[4], f[5], proto, f[11])
				r.first = off == 0
			}
		default:
			continue // not IP
		}
		r.proto = uint8(proto)
		var sp, dp int
		switch proto {
		case flow.ProtoTCP:
			sp, _ = strconv.Atoi(f[14])
			dp, _ = strconv.Atoi(f[15])
		case flow.ProtoUDP:
			sp, _ = strconv.Atoi(f[16])
			dp, _ = strconv.Atoi(f[17])
		case flow.ProtoSCTP:
			sp, _ = strconv.Atoi(f[18])
			dp, _ = strconv.Atoi(f[19])
		}
		r.length, _ = strconv.ParseUint(f[1], 10, 64)
		r.key = makeCmpKey(r.proto, r.src, r.dst, uint16(sp), uint16(dp))
		if r.first {
			if _, ok := dgramPorts[r.dgram]; !ok {
				dgramPorts[r.dgram] = [2]uint16{uint16(sp), uint16(dp)}
			}
		}
		rows = append(rows, r)
	}
	res := map[cmpKey]counts{}
	resolved := 0
	for _, r := range rows {
		k := r.key
		if r.dgram != "" && !r.first {
			if p, ok := dgramPorts[r.dgram]; ok {
				k = makeCmpKey(r.proto, r.src, r.dst, p[0], p[1])
				resolved++
			}
		}
		c := res[k]
		c.packets++
		c.bytes += r.length
		res[k] = c
	}
	return res, len(rows), resolved, nil
}

// recordFlows sums final records per cmpKey.
func recordFlows(recs []flow.Record) (map[cmpKey]counts, int) {
	res := map[cmpKey]counts{}
	n := 0
	for _, r := range recs {
		if !r.Reason.Final() {
			continue
		}
		k := makeCmpKey(r.Tuple.Proto, r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family), r.Tuple.SrcPort, r.Tuple.DstPort)
		c := res[k]
		c.packets += r.Source.Packets + r.Destination.Packets
		c.bytes += r.Source.Bytes + r.Destination.Bytes
		n += int(r.Source.Packets + r.Destination.Packets)
		res[k] = c
	}
	return res, n
}

func diffFlows(want, got map[cmpKey]counts) []string {
	var d []string
	for k, w := range want {
		if g := got[k]; g != w {
			d = append(d, fmt.Sprintf("%v: tshark %d pkts %d bytes, table %d pkts %d bytes", k, w.packets, w.bytes, g.packets, g.bytes))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%v: not in tshark, table %d pkts %d bytes", k, g.packets, g.bytes))
		}
	}
	sort.Strings(d)
	return d
}

// TestMatchesTshark feeds every shared capture through a table and
// compares packets and bytes per flow with tshark.
func TestMatchesTshark(t *testing.T) {
	tshark := testdata.Tool(t, "tshark")
	dir := testdata.Pcaps(t)
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		n := d.Name()
		if err == nil && !d.IsDir() && !strings.Contains(p, "pcapgo-tests") &&
			(strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcap.gz") || strings.HasSuffix(n, ".pcapng")) {
			paths = append(paths, p)
		}
		return nil
	})
	if len(paths) < 40 {
		t.Fatalf("only %d captures under %s", len(paths), dir)
	}
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			want, nIP, _, err := tsharkFlows(t, tshark, p)
			if err != nil {
				t.Skipf("tshark cannot read it: %v", err)
			}
			pkts := readCapture(t, p)
			infos, unsupported := packetInfos(pkts)
			if unsupported == len(pkts) && nIP > 0 {
				t.Skip("link type not handled by sensor/decode")
			}
			recs, st := collect(t, longConfig(), infos)
			got, n := recordFlows(recs)
			if n != nIP || len(infos) != nIP {
				t.Errorf("tshark saw %d IP frames, decoder %d, records count %d", nIP, len(infos), n)
			}
			if st.Active != 0 || st.Created != uint64(len(recs)) {
				t.Errorf("after flush: active %d, created %d, records %d", st.Active, st.Created, len(recs))
			}
			for _, d := range diffFlows(want, got) {
				t.Error(d)
			}
		})
	}
}

// TestFragmentsJoinDatagramFlow checks the fragment captures in detail:
// every non-first fragment whose first fragment is in the file is counted
// in the datagram's flow (tshark's datagram mapping), the others in a
// port-less flow as orphans.
func TestFragmentsJoinDatagramFlow(t *testing.T) {
	tshark := testdata.Tool(t, "tshark")
	dir := testdata.Pcaps(t)
	totalReordered := 0
	defer func() {
		if totalReordered == 0 {
			t.Error("no fragment went through the held list")
		}
	}()
	for _, rel := range []string{
		"zeek/ipv6-fragmented-dns.pcap",
		"zeek/fragmented-1.pcap", "zeek/fragmented-2.pcap", "zeek/fragmented-3.pcap", "zeek/fragmented-4.pcap",
		"suricata-verify/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap",
		"suricata-verify/bug-6887-defrag-ipv6-tcp/frag-ip-tcp.pcap",
	} {
		t.Run(rel, func(t *testing.T) {
			p := filepath.Join(dir, rel)
			want, nIP, resolved, err := tsharkFlows(t, tshark, p)
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			infos, _ := packetInfos(readCapture(t, p))
			nonFirst := 0
			for _, in := range infos {
				if in.Frag.IsFragment && in.Frag.Offset != 0 {
					nonFirst++
				}
			}
			if nonFirst == 0 {
				t.Fatal("no non-first fragments decoded")
			}
			check := func(t *testing.T, infos []PacketInfo, reversed bool) {
				recs, st := collect(t, longConfig(), infos)
				got, n := recordFlows(recs)
				if n != nIP {
					t.Errorf("tshark %d IP frames, records %d", nIP, n)
				}
				for _, d := range diffFlows(want, got) {
					t.Error(d)
				}
				if int(st.FragmentsResolved) != resolved || int(st.FragmentsOrphaned) != nonFirst-resolved {
					t.Errorf("resolved %d orphaned %d, tshark mapping: %d resolved of %d non-first", st.FragmentsResolved, st.FragmentsOrphaned, resolved, nonFirst)
				}
				// Fragments whose first fragment comes only later in this input.
				wantReordered := 0
				for i := range infos {
					if !infos[i].Frag.IsFragment || infos[i].Frag.Offset == 0 {
						continue
					}
					before, after := false, false
					for j := range infos {
						if infos[j].Frag.IsFragment && infos[j].Frag.Offset == 0 && fragKeyOf(&infos[j]) == fragKeyOf(&infos[i]) {
							before = before || j < i
							after = after || j > i
						}
					}
					if after && !before {
						wantReordered++
					}
				}
				if int(st.FragmentsReordered) != wantReordered {
					t.Errorf("reordered fragments %d, want %d (reversed input %v)", st.FragmentsReordered, wantReordered, reversed)
				}
				totalReordered += int(st.FragmentsReordered)
			}
			t.Run("in-order", func(t *testing.T) { check(t, infos, false) })
			// Reversed order (timestamps kept): every non-first fragment
			// now precedes its first fragment and must be held, then
			// resolved when the first fragment arrives.
			rev := make([]PacketInfo, len(infos))
			for i := range infos {
				rev[len(infos)-1-i] = infos[i]
			}
			t.Run("reversed", func(t *testing.T) { check(t, rev, true) })
		})
	}
}
