package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// namedTunnelCaptures are the shared captures known to hold tunnels.
var namedTunnelCaptures = []string{"arkime/gre-erspan.pcap", "arkime/ipv6-in-ipv4.pcap", "zeek/vxlan.pcap"}

// encapOriginals are the shared captures the built tunnel captures wrap:
// every protocol of the Community ID spec, and IPv6 fragments.
var encapOriginals = []string{"community-id-spec/combined.pcap.gz", "zeek/ipv6-fragmented-dns.pcap"}

// sharedTunnelCaptures returns the shared captures in which the decoder
// finds a tunnel, relative to the pcaps folder; the named ones must be
// among them.
func sharedTunnelCaptures(t *testing.T) []string {
	t.Helper()
	var out []string
	var p Packet
	for _, c := range allCaptures(t) {
		for _, pk := range c.packets {
			Decode(pk.link, pk.data, &p)
			if p.NTunnels > 0 || p.OpaqueTunnel != 0 {
				out = append(out, c.path)
				break
			}
		}
	}
	for _, n := range namedTunnelCaptures {
		found := false
		for _, o := range out {
			found = found || o == n
		}
		if !found {
			t.Errorf("no tunnel found in %s", n)
		}
	}
	return out
}

// buildTunnelCaptures wraps each of encapOriginals in every encaptest
// kind, in dir, and returns the paths.
func buildTunnelCaptures(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, orig := range encapOriginals {
		in := testenv.Pcap(t, orig)
		for _, k := range encaptest.Kinds {
			path := filepath.Join(dir, strings.NewReplacer("/", "_", ".pcap.gz", "", ".pcap", "").Replace(orig)+"-"+string(k)+".pcap")
			wrapped, _, err := encaptest.File(k, in, path)
			if err != nil {
				t.Fatal(err)
			}
			if wrapped == 0 {
				t.Fatalf("%s: no packet wrapped in %s", orig, k)
			}
			out = append(out, path)
		}
	}
	return out
}

// tsharkCommunityIDs returns tshark's Community ID of every frame of the
// capture ("" for frames it gives none), with the given seed and IP
// reassembly off, as the decoder sees fragments.
func tsharkCommunityIDs(tshark, path string, seed int) ([]string, error) {
	cmd := exec.Command(tshark, "-n", "-r", path, "--enable-protocol", "communityid",
		"-o", fmt.Sprintf("communityid.seed:%d", seed), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-e", "communityid")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark %s: %w: %s", path, err, stderr.String())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"), nil
}

// TestTunnelCommunityIDsMatchTshark decodes every frame of the shared
// tunnel captures and of shared captures wrapped in every tunnel
// encaptest builds, and requires the Community ID of the decoded tuple
// to be tshark's for that frame, with seed 0 and seed 4242 (the built
// captures with one of the two, alternating): tshark, as
// Zeek, Suricata and Arkime, hashes the innermost connection (the tunnel
// itself when its payload is not IP).
func TestTunnelCommunityIDsMatchTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	pcaps := testenv.Pcaps(t)
	type job struct {
		path string
		seed int
	}
	var jobs []job
	var paths []string
	for _, rel := range sharedTunnelCaptures(t) {
		p := filepath.Join(pcaps, rel)
		paths = append(paths, p)
		jobs = append(jobs, job{p, 0}, job{p, 4242})
	}
	// Built captures: one seed each, alternating (tshark is slow).
	for i, p := range buildTunnelCaptures(t, t.TempDir()) {
		paths = append(paths, p)
		jobs = append(jobs, job{p, 4242 * (i % 2)})
	}
	results := make([][]string, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = tsharkCommunityIDs(tshark, j.path, j.seed)
		}()
	}
	wg.Wait()
	var compared, tunnelled, exc int
	for i, j := range jobs {
		name := fmt.Sprintf("%s/seed%d", filepath.Base(j.path), j.seed)
		if errs[i] != nil {
			t.Errorf("%s: %v", name, errs[i])
			continue
		}
		pks, err := readCapture(j.path)
		if err != nil {
			t.Fatal(err)
		}
		if len(pks) != len(results[i]) {
			t.Errorf("%s: tshark printed %d frames of %d", name, len(results[i]), len(pks))
			continue
		}
		var p Packet
		bad := 0
		for n, pk := range pks {
			want := results[i][n]
			Decode(pk.link, pk.data, &p)
			if p.NTunnels > 0 {
				tunnelled++
			}
			if want == "" {
				continue
			}
			compared++
			got := ""
			if p.HasTuple {
				got = flow.CommunityID(uint16(j.seed), p.Tuple)
			}
			if mixed, ok := tsharkQuirkID(&p, uint16(j.seed)); ok && got != want && mixed == want {
				exc++
				continue
			}
			if got != want {
				if bad++; bad <= 5 {
					t.Errorf("%s frame %d: Community ID %s (%v, %d tunnels), tshark %s", name, n+1, got, p.Tuple, p.NTunnels, want)
				}
			}
		}
	}
	t.Logf("%d captures, %d frames with a tshark Community ID compared (%d decapsulated); %d tunnelled packets without an inner transport header where tshark mixes the inner addresses with the tunnel's ports or protocol (tsharkoracle.TunnelQuirkID)",
		len(paths), compared, tunnelled, exc)
	if tunnelled == 0 {
		t.Fatal("no frame decapsulated")
	}
}

// tsharkQuirkID returns tshark's Community ID for a tunnelled packet
// without an inner transport header (see tsharkoracle.TunnelQuirkID).
func tsharkQuirkID(p *Packet, seed uint16) (string, bool) {
	noTransport := p.FragOffset != 0 || !p.HasPorts ||
		!(flow.HasPorts(p.Proto) || p.Proto == flow.ProtoICMP || p.Proto == flow.ProtoICMPv6)
	return tsharkoracle.TunnelQuirkID(seed, p.Tuple, p.Tunnels[:p.NTunnels], noTransport)
}

// wrapped returns a shared packet wrapped in kind k (the first packet of
// community-id-spec/tcp.pcap: a TCP SYN over IPv4).
func wrappedSYN(t *testing.T, k encaptest.Kind) ([]byte, []byte) {
	t.Helper()
	pks, err := readCapture(testenv.Pcap(t, "community-id-spec/tcp.pcap"))
	if err != nil || len(pks) == 0 {
		t.Fatalf("tcp.pcap: %v", err)
	}
	fr, ok := encaptest.Wrap(k, pks[0].data, 1)
	if !ok {
		t.Fatalf("%s: not wrapped", k)
	}
	return pks[0].data, fr
}

// TestTunnelChain checks the recorded chain of a two-level tunnel (VXLAN
// inside GRE): types, outer addresses, IDs, the outermost tuple, and the
// inner tuple equal to the unwrapped packet's.
func TestTunnelChain(t *testing.T) {
	orig, fr := wrappedSYN(t, encaptest.VXLANInGR)
	var want, p Packet
	Decode(LinkEthernet, orig, &want)
	Decode(LinkEthernet, fr, &p)
	if p.Tuple != want.Tuple || p.TCPFlags != want.TCPFlags || p.Status != 0 {
		t.Fatalf("inner %v flags %#x status %v, want %v flags %#x", p.Tuple, p.TCPFlags, p.Status, want.Tuple, want.TCPFlags)
	}
	if p.PayloadLen != want.PayloadLen || !bytes.Equal(fr[p.L3Offset:p.L3Offset+20], orig[want.L3Offset:want.L3Offset+20]) {
		t.Errorf("inner offsets: L3 %d payload %d, want payload %d", p.L3Offset, p.PayloadLen, want.PayloadLen)
	}
	if p.NTunnels != 2 {
		t.Fatalf("%d levels", p.NTunnels)
	}
	src, _ := flow.AddrFromNetip(encaptest.OuterSrc4)
	dst, _ := flow.AddrFromNetip(encaptest.OuterDst4)
	wantChain := []flow.Tunnel{
		{Src: src, Dst: dst, Type: flow.TunnelGRE, Family: 4, Proto: 47},
		{Src: src, Dst: dst, Type: flow.TunnelVXLAN, Family: 4, Proto: 17, SrcPort: 49152, DstPort: PortVXLAN, ID: encaptest.VNI, HasID: true},
	}
	for i, w := range wantChain {
		if p.Tunnels[i] != w {
			t.Errorf("level %d: %+v, want %+v", i, p.Tunnels[i], w)
		}
	}
	if p.Outer.Proto != 47 || p.Outer.Src != src || p.OuterL3Offset != 14 {
		t.Errorf("outer %v at %d", p.Outer, p.OuterL3Offset)
	}
	var c Counters
	c.Observe(&p, len(fr))
	if c.Tunnels[flow.TunnelGRE] != 1 || c.Tunnels[flow.TunnelVXLAN] != 1 || c.TunnelDepth[2] != 1 {
		t.Errorf("counters %v depth %v", c.Tunnels, c.TunnelDepth)
	}
}

// TestTunnelIDs checks the identifier each tunnel records.
func TestTunnelIDs(t *testing.T) {
	for _, tc := range []struct {
		k     encaptest.Kind
		typ   flow.TunnelType
		id    uint32
		hasID bool
	}{
		{encaptest.IPIP4, flow.TunnelIPIP, 0, false},
		{encaptest.IPIP6, flow.TunnelIPIP, 0, false},
		{encaptest.GRE, flow.TunnelGRE, encaptest.GREKey, true},
		{encaptest.GRETEB, flow.TunnelGRE, encaptest.GREKey, true},
		{encaptest.ERSPAN1, flow.TunnelERSPAN1, 0, false},
		{encaptest.ERSPAN2, flow.TunnelERSPAN2, encaptest.SessionID, true},
		{encaptest.ERSPAN3, flow.TunnelERSPAN3, encaptest.SessionID, true},
		{encaptest.VXLAN, flow.TunnelVXLAN, encaptest.VNI, true},
		{encaptest.VXLAN6, flow.TunnelVXLAN, encaptest.VNI, true},
		{encaptest.Geneve, flow.TunnelGeneve, encaptest.VNI, true},
		{encaptest.GTPU, flow.TunnelGTPU, encaptest.TEID, true},
	} {
		orig, fr := wrappedSYN(t, tc.k)
		var want, p Packet
		Decode(LinkEthernet, orig, &want)
		Decode(LinkEthernet, fr, &p)
		l := p.Tunnels[0]
		if p.NTunnels != 1 || l.Type != tc.typ || l.ID != tc.id || l.HasID != tc.hasID || p.Tuple != want.Tuple {
			t.Errorf("%s: %d levels, %+v, inner %v", tc.k, p.NTunnels, l, p.Tuple)
		}
	}
}

// TestTunnelDepth checks the depth option: the default strips both
// levels of VXLAN in GRE, depth 1 stops at the VXLAN tunnel's own UDP
// connection and counts a depth-limit hit, a negative depth keys on the
// outer GRE header as before tunnels were decoded.
func TestTunnelDepth(t *testing.T) {
	orig, fr := wrappedSYN(t, encaptest.VXLANInGR)
	var want, p Packet
	Decode(LinkEthernet, orig, &want)
	(&Options{TunnelDepth: 2}).Decode(LinkEthernet, fr, &p)
	if p.Tuple != want.Tuple || p.NTunnels != 2 || p.TunnelDepthHit {
		t.Errorf("depth 2: %v, %d levels, hit %v", p.Tuple, p.NTunnels, p.TunnelDepthHit)
	}
	(&Options{TunnelDepth: 1}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 1 || !p.TunnelDepthHit || p.Tuple.Proto != flow.ProtoUDP || p.Tuple.DstPort != PortVXLAN || p.Status != 0 {
		t.Errorf("depth 1: %v, %d levels, hit %v, status %v", p.Tuple, p.NTunnels, p.TunnelDepthHit, p.Status)
	}
	var c Counters
	c.Observe(&p, len(fr))
	if c.TunnelDepthLimit != 1 || c.TunnelDepth[1] != 1 {
		t.Errorf("counters: depth limit %d, depth %v", c.TunnelDepthLimit, c.TunnelDepth)
	}
	(&Options{TunnelDepth: -1}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 0 || p.TunnelDepthHit || p.Tuple.Proto != 47 || p.Outer != (flow.Tuple{}) {
		t.Errorf("depth -1: %v, %d levels, hit %v", p.Tuple, p.NTunnels, p.TunnelDepthHit)
	}
}

// TestTunnelPorts checks configurable UDP tunnel ports: VXLAN on a
// non-standard port is stripped only when configured, and an empty list
// switches VXLAN off.
func TestTunnelPorts(t *testing.T) {
	orig, fr := wrappedSYN(t, encaptest.VXLAN)
	var want, p Packet
	Decode(LinkEthernet, orig, &want)
	udpOff := 14 + 20
	binary.BigEndian.PutUint16(fr[udpOff+2:], 8472) // the Linux kernel's old VXLAN port
	Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 0 || p.Tuple.DstPort != 8472 {
		t.Errorf("8472 by default: %v, %d levels", p.Tuple, p.NTunnels)
	}
	(&Options{VXLANPorts: []uint16{4789, 8472}}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 1 || p.Tuple != want.Tuple {
		t.Errorf("8472 configured: %v, %d levels", p.Tuple, p.NTunnels)
	}
	binary.BigEndian.PutUint16(fr[udpOff+2:], PortVXLAN)
	(&Options{VXLANPorts: []uint16{}}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 0 || p.Tuple.DstPort != PortVXLAN {
		t.Errorf("VXLAN off: %v, %d levels", p.Tuple, p.NTunnels)
	}
}

// TestTunnelOuterFragment checks that a tunnel whose outer IP packet is
// fragmented is keyed on the outer header (first and later fragments
// alike, so the datagram stays in one flow) and counted.
func TestTunnelOuterFragment(t *testing.T) {
	_, fr := wrappedSYN(t, encaptest.GRE)
	ip := fr[14:]
	for _, off := range []uint16{0, 185} { // first fragment with MF, then a later one
		ip[6], ip[7] = 0x20|byte(off>>8), byte(off)
		var p Packet
		Decode(LinkEthernet, fr, &p)
		if p.NTunnels != 0 || !p.TunnelFragment || p.Tuple.Proto != 47 || !p.IsFragment {
			t.Errorf("offset %d: %v, %d levels, tunnel fragment %v", off*8, p.Tuple, p.NTunnels, p.TunnelFragment)
		}
		var c Counters
		c.Observe(&p, len(fr))
		if c.TunnelFragments != 1 {
			t.Errorf("offset %d: tunnel fragments counted %d", off*8, c.TunnelFragments)
		}
	}
}

// TestTunnelOpaque checks tunnels whose payload is not IP: ARP over
// VXLAN (as in zeek/vxlan.pcap) and a GRE payload cut short are keyed on
// the tunnel's own connection, the second flagged truncated.
func TestTunnelOpaque(t *testing.T) {
	var arp []byte
	for _, c := range allCaptures(t) {
		if c.path == "zeek/vxlan.pcap" {
			arp = c.packets[0].data
		}
	}
	if arp == nil {
		t.Fatal("zeek/vxlan.pcap not loaded")
	}
	var p Packet
	Decode(LinkEthernet, arp, &p)
	if p.NTunnels != 0 || p.OpaqueTunnel != flow.TunnelVXLAN || p.Tuple.DstPort != PortVXLAN || p.Status != 0 || p.EtherType != EtherTypeIPv4 {
		t.Errorf("ARP in VXLAN: %v, %d levels, opaque %v, status %v, ethertype %#x", p.Tuple, p.NTunnels, p.OpaqueTunnel, p.Status, p.EtherType)
	}
	_, fr := wrappedSYN(t, encaptest.GRE)
	cut := fr[:14+20+16+10] // GRE header whole, inner IPv4 header cut
	Decode(LinkEthernet, cut, &p)
	if p.NTunnels != 0 || p.OpaqueTunnel != flow.TunnelGRE || p.Tuple.Proto != 47 || p.Status != StatusTruncated {
		t.Errorf("cut GRE: %v, opaque %v, status %v", p.Tuple, p.OpaqueTunnel, p.Status)
	}
	var c Counters
	c.Observe(&p, len(fr))
	if c.TunnelOpaque != 1 || c.Truncated != 1 {
		t.Errorf("counters: opaque %d truncated %d", c.TunnelOpaque, c.Truncated)
	}
}

// TestNotTunnels checks headers that look like tunnels but are not taken
// apart: GRE version 1 (PPTP), GTP-U echo requests, and Teredo with an
// authentication indication (which is).
func TestNotTunnels(t *testing.T) {
	_, fr := wrappedSYN(t, encaptest.GRE)
	g := 14 + 20
	fr[g+1] |= 1 // version 1
	var p Packet
	Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 0 || p.OpaqueTunnel != 0 || p.Tuple.Proto != 47 || p.Status != 0 {
		t.Errorf("GRE v1: %v, %d levels, opaque %v, status %v", p.Tuple, p.NTunnels, p.OpaqueTunnel, p.Status)
	}
	_, fr = wrappedSYN(t, encaptest.GTPU)
	fr[14+20+8+1] = 1 // echo request
	Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 0 || p.Tuple.DstPort != PortGTPU || p.Status != 0 {
		t.Errorf("GTP-U echo: %v, %d levels, status %v", p.Tuple, p.NTunnels, p.Status)
	}
}

// TestTeredoAuthentication checks the Teredo authentication indication
// is skipped by its lengths before the origin indication and IPv6.
func TestTeredoAuthentication(t *testing.T) {
	pks, err := readCapture(testenv.Pcap(t, "community-id-spec/ipv6.pcap"))
	if err != nil || len(pks) == 0 {
		t.Fatal(err)
	}
	var want, p Packet
	Decode(LinkEthernet, pks[0].data, &want)
	fr, ok := encaptest.Wrap(encaptest.Teredo, pks[0].data, 1)
	if !ok {
		t.Fatal("not wrapped")
	}
	udpOff := 14 + 20
	auth := []byte{0, 1, 2, 3, 'i', 'd', 'a', 'b', 'c', 1, 2, 3, 4, 5, 6, 7, 8, 0} // id 2, auth 3, nonce, confirmation
	fr = append(append(append([]byte{}, fr[:udpOff+8]...), auth...), fr[udpOff+8:]...)
	Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 1 || p.Tunnels[0].Type != flow.TunnelTeredo || p.Tuple != want.Tuple {
		t.Errorf("Teredo with auth: %v, %d levels, want %v", p.Tuple, p.NTunnels, want.Tuple)
	}
}
