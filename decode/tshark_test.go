package decode

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/tapir-sensor/tapir/flow"
)

// tsharkFields are the fields asked of tshark for every packet. They are
// requested with occurrence=a and the first value is used for everything
// (what occurrence=f would print: the outermost header, matching the
// decoder's outer-header decision); the second vlan.id is the inner VLAN.
var tsharkFields = []string{
	"frame.number",
	"ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
	"icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
	"vlan.id", "tcp.flags",
	"ip.frag_offset", "ip.flags.mf",
	"ipv6.fraghdr.offset", "ipv6.fraghdr.more",
	"ipv6.hopopts.nxt", "ipv6.routing.nxt", "ipv6.dstopts.nxt", "ipv6.fraghdr.nxt",
	"frame.protocols",
}

const (
	fNum = iota
	fIPSrc
	fIPDst
	fIP6Src
	fIP6Dst
	fIPProto
	fIP6Nxt
	fTCPSrc
	fTCPDst
	fUDPSrc
	fUDPDst
	fSCTPSrc
	fSCTPDst
	fICMPType
	fICMPCode
	fICMP6Type
	fICMP6Code
	fVLAN
	fTCPFlags
	fFragOff
	fMF
	fFrag6Off
	fFrag6More
	fHopNxt
	fRtNxt
	fDstNxt
	fFragNxt
	fProtocols
	numFields
)

// tsharkRow is tshark's decode of one frame: every field split on ','.
type tsharkRow [numFields][]string

func (r *tsharkRow) first(f int) string {
	if len(r[f]) == 0 {
		return ""
	}
	return r[f][0]
}

func (r *tsharkRow) has(f int) bool { return r.first(f) != "" }

// runTshark decodes a capture with tshark. IP reassembly is switched off
// so that each fragment is dissected on its own, as the decoder sees it.
func runTshark(tshark, path string, extra ...string) ([]tsharkRow, error) {
	args := append(extra, "-n", "-r", path,
		"-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tshark, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark %s: %w: %s", path, err, stderr.String())
	}
	var rows []tsharkRow
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != numFields {
			return nil, fmt.Errorf("tshark %s: %d columns in %q", path, len(cols), line)
		}
		var r tsharkRow
		for i, c := range cols {
			if c != "" {
				r[i] = strings.Split(c, ",")
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func atoi(s string) int {
	if strings.HasPrefix(s, "0x") {
		v, _ := strconv.ParseInt(s[2:], 16, 64)
		return int(v)
	}
	v, _ := strconv.Atoi(s)
	return int(v)
}

// ipv6ExtNxt maps an IPv6 extension header type to the tshark field that
// holds its next-header value.
var ipv6ExtNxt = map[int]int{0: fHopNxt, 43: fRtNxt, 60: fDstNxt, 44: fFragNxt}

// expectedIPv6Proto follows tshark's next-header chain through the
// extension headers it names.
func expectedIPv6Proto(r *tsharkRow) int {
	nxt := atoi(r.first(fIP6Nxt))
	for i := 0; i < 8; i++ {
		f, ok := ipv6ExtNxt[nxt]
		if !ok || !r.has(f) {
			return nxt
		}
		nxt = atoi(r.first(f))
	}
	return nxt
}

// tunnelled reports whether tshark's protocol stack for the frame shows a
// tunnel: an IP header, then later another link or IP header.
func tunnelled(r *tsharkRow) bool {
	stack := strings.Join(r[fProtocols], ",")
	i := strings.Index(stack, ":ip")
	if i < 0 {
		return false
	}
	rest := stack[i+3:]
	return strings.Contains(rest, ":ip:") || strings.Contains(rest, ":ipv6:") ||
		strings.Contains(rest, ":eth:") || strings.HasSuffix(rest, ":ip") || strings.HasSuffix(rest, ":ipv6")
}

// exceptions counts the narrow, documented cases where tshark's decode
// legitimately differs from ours.
type exceptions map[string]int

// levelRow returns tshark's row as seen from the innermost IP header the
// decoder reached: for a packet taken out of tunnels, each IP, IPv6 and
// UDP field list starts after the values of the outer headers (one per
// tunnel level of that family; one UDP header per UDP tunnel), so that
// the first value is the inner connection's. IPv6 extension header fields
// are not shifted (the outer headers of the tunnels compared carry none).
func levelRow(p *Packet, r *tsharkRow) *tsharkRow {
	if p.NTunnels == 0 {
		return r
	}
	var n4, n6, nUDP int
	for _, t := range p.Tunnels[:p.NTunnels] {
		if t.Family == flow.FamilyIPv4 {
			n4++
		} else {
			n6++
		}
		switch t.Type {
		case flow.TunnelVXLAN, flow.TunnelGeneve, flow.TunnelGTPU, flow.TunnelTeredo:
			nUDP++
		}
	}
	out := *r
	shift := func(n int, fs ...int) {
		for _, f := range fs {
			if len(out[f]) > n {
				out[f] = out[f][n:]
			} else {
				out[f] = nil
			}
		}
	}
	shift(n4, fIPSrc, fIPDst, fIPProto, fFragOff, fMF)
	shift(n6, fIP6Src, fIP6Dst, fIP6Nxt)
	shift(nUDP, fUDPSrc, fUDPDst)
	return &out
}

// compareOuter checks the outermost tunnel's own tuple, p.Outer, against
// tshark's first (outermost) values.
func compareOuter(p *Packet, r *tsharkRow) []string {
	o := &p.Outer
	srcF, dstF, protoF := fIPSrc, fIPDst, fIPProto
	if o.Family == flow.FamilyIPv6 {
		srcF, dstF, protoF = fIP6Src, fIP6Dst, fIP6Nxt
	}
	var bad []string
	if !r.has(srcF) || o.Src.Netip(o.Family) != netip.MustParseAddr(r.first(srcF)) ||
		o.Dst.Netip(o.Family) != netip.MustParseAddr(r.first(dstF)) || int(o.Proto) != atoi(r.first(protoF)) {
		bad = append(bad, fmt.Sprintf("outer %v: tshark %s -> %s proto %s", o, r.first(srcF), r.first(dstF), r.first(protoF)))
	}
	if o.Proto == flow.ProtoUDP && (int(o.SrcPort) != atoi(r.first(fUDPSrc)) || int(o.DstPort) != atoi(r.first(fUDPDst))) {
		bad = append(bad, fmt.Sprintf("outer ports %d/%d: tshark %s/%s", o.SrcPort, o.DstPort, r.first(fUDPSrc), r.first(fUDPDst)))
	}
	return bad
}

// comparePacket checks the decoder's output against tshark's decode of
// the same frame: the innermost connection the decoder reached against
// tshark's fields at that level, and for tunnelled packets the outer
// tuple against tshark's outermost values. It returns the mismatches,
// and records in exc the differences that are deliberate.
func comparePacket(p *Packet, r *tsharkRow, exc exceptions) []string {
	var bad []string
	mismatch := func(what string, got, want any) {
		bad = append(bad, fmt.Sprintf("%s: got %v, tshark %v", what, got, want))
	}
	if p.NTunnels > 0 {
		bad = append(bad, compareOuter(p, r)...)
		exc["tunnelled: inner connection compared"]++
	}
	r = levelRow(p, r)
	hasIP4, hasIP6 := r.has(fIPSrc), r.has(fIP6Src)
	if !p.HasTuple {
		if hasIP4 || hasIP6 {
			mismatch("has IP", false, true)
		}
		return bad
	}
	var wantSrc, wantDst string
	switch p.Tuple.Family {
	case flow.FamilyIPv4:
		if !hasIP4 {
			mismatch("family", 4, "no ip.src")
			return bad
		}
		wantSrc, wantDst = r.first(fIPSrc), r.first(fIPDst)
	case flow.FamilyIPv6:
		if !hasIP6 {
			mismatch("family", 6, "no ipv6.src")
			return bad
		}
		if hasIP4 {
			// Both families in one frame: tshark's first ip.src could be
			// an inner IPv4 in IPv6 or an IPv4 quoted in ICMPv6; our
			// IPv6 outer header is still compared below.
			exc["ipv6 frame also holding IPv4 (4in6 or quoted)"]++
		}
		wantSrc, wantDst = r.first(fIP6Src), r.first(fIP6Dst)
	default:
		mismatch("family", p.Tuple.Family, "4 or 6")
		return bad
	}
	if got := p.Tuple.Src.Netip(p.Tuple.Family); got != netip.MustParseAddr(wantSrc) {
		mismatch("src", got, wantSrc)
	}
	if got := p.Tuple.Dst.Netip(p.Tuple.Family); got != netip.MustParseAddr(wantDst) {
		mismatch("dst", got, wantDst)
	}

	wantProto := atoi(r.first(fIPProto))
	fragOffF, mfF := fFragOff, fMF
	if p.Tuple.Family == flow.FamilyIPv6 {
		wantProto = expectedIPv6Proto(r)
		fragOffF, mfF = fFrag6Off, fFrag6More
	}
	if int(p.Proto) != wantProto {
		mismatch("proto", p.Proto, wantProto)
	}
	if p.Proto != p.Tuple.Proto {
		mismatch("tuple proto", p.Tuple.Proto, p.Proto)
	}

	// Fragments (tshark's offsets are in 8-byte units).
	if r.has(fragOffF) {
		if want := uint32(atoi(r.first(fragOffF))) * 8; p.FragOffset != want {
			mismatch("frag offset", p.FragOffset, want)
		}
		if want := r.first(mfF) == "1"; p.MoreFragments != want {
			mismatch("more fragments", p.MoreFragments, want)
		}
		if wantFrag := p.FragOffset != 0 || p.MoreFragments || p.Tuple.Family == flow.FamilyIPv6; p.IsFragment != wantFrag {
			mismatch("is fragment", p.IsFragment, wantFrag)
		}
	} else if p.Tuple.Family == flow.FamilyIPv6 && p.IsFragment {
		mismatch("is fragment", true, "no fragment header")
	}

	// Ports: the fields of the protocol we decoded. tshark's first value
	// of those fields is the outer header's, as ours.
	var sf, df int
	switch p.Proto {
	case flow.ProtoTCP:
		sf, df = fTCPSrc, fTCPDst
	case flow.ProtoUDP:
		sf, df = fUDPSrc, fUDPDst
	case flow.ProtoSCTP:
		sf, df = fSCTPSrc, fSCTPDst
	case flow.ProtoICMP:
		sf, df = fICMPType, fICMPCode
	case flow.ProtoICMPv6:
		sf, df = fICMP6Type, fICMP6Code
	}
	if sf != 0 {
		switch {
		case p.HasPorts && !r.has(sf):
			if p.FragOffset == 0 && p.IsFragment {
				// tshark (reassembly off) does not dissect the transport of
				// a first fragment too short for it; we read its ports.
				exc["first fragment: tshark shows no transport"]++
			} else {
				mismatch("ports", fmt.Sprintf("%d/%d", p.Tuple.SrcPort, p.Tuple.DstPort), "none")
			}
		case !p.HasPorts && r.has(sf):
			mismatch("ports", "none", r.first(sf)+"/"+r.first(df))
		case p.HasPorts:
			ws, wd := atoi(r.first(sf)), atoi(r.first(df))
			if int(p.Tuple.SrcPort) != ws || int(p.Tuple.DstPort) != wd {
				mismatch("ports", fmt.Sprintf("%d/%d", p.Tuple.SrcPort, p.Tuple.DstPort), fmt.Sprintf("%d/%d", ws, wd))
			}
		}
	}
	if p.Proto == flow.ProtoTCP && r.has(fTCPFlags) && p.Status&StatusTruncated == 0 {
		if want := atoi(r.first(fTCPFlags)) & 0xff; int(p.TCPFlags) != want {
			mismatch("tcp flags", fmt.Sprintf("%#02x", p.TCPFlags), fmt.Sprintf("%#02x", want))
		}
	}

	// VLAN IDs.
	wantVLAN, wantInner := 0, 0
	if len(r[fVLAN]) > 0 {
		wantVLAN = atoi(r[fVLAN][0])
	}
	if len(r[fVLAN]) > 1 {
		wantInner = atoi(r[fVLAN][1])
	}
	if (int(p.Tuple.VLAN) != wantVLAN || int(p.Tuple.InnerVLAN) != wantInner) && p.VLANTags == 0 && tunnelled(r) {
		// A VLAN tag inside a tunnel (e.g. ERSPAN carrying a tagged
		// frame): we report the outer, untagged flow.
		exc["vlan tag inside a tunnel"]++
	} else {
		if int(p.Tuple.VLAN) != wantVLAN {
			mismatch("vlan", p.Tuple.VLAN, wantVLAN)
		}
		if int(p.Tuple.InnerVLAN) != wantInner {
			mismatch("inner vlan", p.Tuple.InnerVLAN, wantInner)
		}
	}
	return bad
}

// TestDecodeMatchesTshark decodes every packet of every shared capture and
// compares it with tshark's decode of the same packet.
func TestDecodeMatchesTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	caps := allCaptures(t)
	dir := testenv.Pcaps(t)
	exc := exceptions{}
	var total, compared int
	// Run tshark over the captures two at a time up front.
	type result struct {
		rows []tsharkRow
		err  error
	}
	results := make([]result, len(caps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i := range caps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i].rows, results[i].err = runTshark(tshark, filepath.Join(dir, caps[i].path))
		}()
	}
	wg.Wait()
	for ci, c := range caps {
		t.Run(c.path, func(t *testing.T) {
			var p Packet
			for _, pk := range c.packets {
				Decode(pk.link, pk.data, &p) // must not panic
			}
			rows, err := results[ci].rows, results[ci].err
			if err != nil || c.err != nil {
				if strings.Contains(c.path, "pcapgo-tests") {
					// The pcapng conformance suite: files one reader or
					// the other refuses are the point of the suite.
					t.Logf("pcapng conformance file: reader error %v, tshark error %v; no-panic only", c.err, err != nil)
					exc["pcapng conformance file unreadable (counted in files)"]++
					return
				}
				t.Fatalf("reader error %v, tshark error %v", c.err, err)
			}
			if len(rows) != len(c.packets) && strings.Contains(c.path, "pcapgo-tests") {
				// pcapgo and tshark disagree on which blocks of this
				// conformance file are packets (e.g. simple packet blocks
				// or packets before an interface description), so frames
				// cannot be paired: no-panic only.
				t.Logf("pcapng conformance file: tshark saw %d packets, pcapgo %d; no-panic only", len(rows), len(c.packets))
				exc["pcapng conformance file: packet count differs"] += len(c.packets)
				return
			}
			if len(rows) != len(c.packets) {
				t.Fatalf("tshark saw %d packets, pcapgo %d", len(rows), len(c.packets))
			}
			nbad := 0
			for i, pk := range c.packets {
				total++
				r := &rows[i]
				if atoi(r.first(fNum)) != i+1 {
					t.Fatalf("row %d is frame %s", i, r.first(fNum))
				}
				Decode(pk.link, pk.data, &p)
				if !knownLink(pk.link) {
					if r.has(fIPSrc) || r.has(fIP6Src) {
						// Link types outside the supported set (NFLOG...)
						// are reported unsupported; tshark decodes them.
						exc[fmt.Sprintf("unsupported link type %d carrying IP", pk.link)]++
					}
					if p.Status&StatusUnsupported == 0 {
						t.Errorf("frame %d: link type %d not flagged unsupported", i+1, pk.link)
					}
					continue
				}
				compared++
				if bad := comparePacket(&p, r, exc); len(bad) > 0 {
					nbad++
					if nbad <= 10 {
						t.Errorf("frame %d (%s, status %v): %s", i+1, strings.Join(r[fProtocols], ","), p.Status, strings.Join(bad, "; "))
					}
				}
			}
			if nbad > 10 {
				t.Errorf("%d frames differ", nbad)
			}
		})
	}
	var keys []string
	for k := range exc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("exception %q: %d packets", k, exc[k])
	}
	t.Logf("%d packets in %d captures, %d compared field by field with tshark", total, len(caps), compared)
	if compared == 0 {
		t.Fatal("no packet compared")
	}
}

func knownLink(l LinkType) bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2, LinkNFLOG:
		return true
	}
	return false
}
