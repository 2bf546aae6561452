// Package tsharkoracle is the tshark oracle the tests compare tapir
// against: it runs tshark on a capture and turns its per-frame fields into
// the flow tuples tapir should assign, with one set of rules for every
// test (outermost IP header, transport ports, non-first IP fragments in
// their datagram's flow).
//
// It is a test helper: it takes a testing.TB and fails or skips through
// it. Its functions are safe for concurrent use.
package tsharkoracle

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// Frame is one frame as tshark reads it, with IP reassembly off (each
// fragment is its own frame).
type Frame struct {
	Number int    // frame.number
	Epoch  string // frame.time_epoch as tshark prints it ("" when absent)
	Len    int    // frame.len
	CapLen int    // frame.cap_len

	// IP says the frame has an IP or IPv6 header; the others are
	// link-layer frames (tapir keeps them in link-layer pseudo flows) and
	// leave Tuple zero.
	IP bool
	// Tuple is the flow the frame belongs to, directional as seen on the
	// wire: addresses and protocol of the outermost IP header (tapir keys
	// tunnels on their outer header; IPv6 extension headers are walked),
	// ports of a TCP, UDP or SCTP header directly inside it, ICMP or
	// ICMPv6 type and code in place of ports. A non-first fragment
	// carries its datagram's ports, taken from the first fragment with
	// the same addresses, protocol and IP ID, or 0 when that fragment is
	// not in the file.
	Tuple flow.Tuple
	// Fragment says the frame is an IP fragment, NonFirst that it is one
	// with a non-zero offset, Resolved that it is a non-first fragment
	// whose datagram's first fragment is in the file.
	Fragment, NonFirst, Resolved bool
}

// CommunityID returns the Community ID (seed 0) of the frame's flow, ""
// when the frame is not IP.
func (f *Frame) CommunityID() string {
	if !f.IP {
		return ""
	}
	return flow.CommunityID(0, f.Tuple)
}

var fields = []string{
	"frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols",
	"ip.src", "ip.dst", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.nxt",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
	"icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
	"ip.id", "ip.frag_offset", "ip.flags.mf", "ipv6.fraghdr.ident", "ipv6.fraghdr.offset",
	"ipv6.fraghdr.nxt", "ipv6.hopopts.nxt", "ipv6.dstopts.nxt", "ipv6.routing.nxt",
}

// field indexes into a split line, in the order of fields.
const (
	fNumber = iota
	fEpoch
	fLen
	fCapLen
	fProtocols
	fIPSrc
	fIPDst
	fIPProto
	fIP6Src
	fIP6Dst
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
	fIPID
	fIPFragOffset
	fIPMF
	fIP6FragIdent
	fIP6FragOffset
	fIP6FragNxt
	fIP6HopNxt
	fIP6DstNxt
	fIP6RoutingNxt
	nFields
)

// Frames runs tshark on the capture at path and returns every frame it
// printed, in file order. ok is false when tshark failed (a damaged file):
// the frames it printed before the damage are still returned, and the
// caller decides whether that is acceptable. tshark missing skips the
// test (fails it under TAPIR_REQUIRE_ALL).
func Frames(tb testing.TB, path string) (frames []Frame, ok bool) {
	tb.Helper()
	args := []string{"-n", "-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(testenv.Tool(tb, "tshark"), args...).Output()
	return parse(out), err == nil
}

// parse turns tshark's field lines into frames.
func parse(out []byte) []Frame {
	type fragID struct {
		proto    uint8
		src, dst netip.Addr
		id       string
	}
	var frames []Frame
	ports := map[fragID][2]uint16{}
	later := map[int]fragID{} // index of a non-first fragment -> its datagram
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < nFields {
			f = append(f, "")
		}
		fr := Frame{Number: atoi(f[fNumber]), Epoch: f[fEpoch], Len: atoi(f[fLen]), CapLen: atoi(f[fCapLen])}
		// The outermost network layer, from the protocol stack.
		outer := ""
		for _, p := range strings.Split(f[fProtocols], ":") {
			if p == "ip" || p == "ipv6" {
				outer = p
				break
			}
		}
		var src, dst netip.Addr
		var proto uint8
		var fid *fragID
		first := true
		switch {
		case outer == "ip" && f[fIPSrc] != "":
			src, dst = mustAddr(f[fIPSrc]), mustAddr(f[fIPDst])
			proto = uint8(atoi(f[fIPProto]))
			off := atoi(f[fIPFragOffset])
			if off != 0 || f[fIPMF] == "1" || f[fIPMF] == "True" {
				fid = &fragID{proto, src, dst, f[fIPID]}
				first = off == 0
			}
		case outer == "ipv6" && f[fIP6Src] != "":
			src, dst = mustAddr(f[fIP6Src]), mustAddr(f[fIP6Dst])
			proto = uint8(atoi(f[fIP6Nxt]))
			for range 8 { // walk the extension headers
				switch proto {
				case 0:
					proto = uint8(atoi(f[fIP6HopNxt]))
				case 60:
					proto = uint8(atoi(f[fIP6DstNxt]))
				case 43:
					proto = uint8(atoi(f[fIP6RoutingNxt]))
				case 44:
					proto = uint8(atoi(f[fIP6FragNxt]))
					fid = &fragID{proto, src, dst, f[fIP6FragIdent]}
					first = atoi(f[fIP6FragOffset]) == 0
				}
			}
		default:
			frames = append(frames, fr) // not IP
			continue
		}
		var sport, dport uint16
		switch proto {
		case flow.ProtoTCP:
			sport, dport = uint16(atoi(f[fTCPSrc])), uint16(atoi(f[fTCPDst]))
		case flow.ProtoUDP:
			sport, dport = uint16(atoi(f[fUDPSrc])), uint16(atoi(f[fUDPDst]))
		case flow.ProtoSCTP:
			sport, dport = uint16(atoi(f[fSCTPSrc])), uint16(atoi(f[fSCTPDst]))
		case flow.ProtoICMP:
			sport, dport = uint16(atoi(f[fICMPType])), uint16(atoi(f[fICMPCode]))
		case flow.ProtoICMPv6:
			sport, dport = uint16(atoi(f[fICMP6Type])), uint16(atoi(f[fICMP6Code]))
		}
		fr.IP = true
		var fam uint8
		fr.Tuple.Src, fam = flow.AddrFromNetip(src)
		fr.Tuple.Dst, _ = flow.AddrFromNetip(dst)
		fr.Tuple.Family, fr.Tuple.Proto, fr.Tuple.SrcPort, fr.Tuple.DstPort = fam, proto, sport, dport
		if fid != nil {
			fr.Fragment = true
			if first {
				ports[*fid] = [2]uint16{sport, dport}
			} else {
				fr.NonFirst = true
				later[len(frames)] = *fid
			}
		}
		frames = append(frames, fr)
	}
	for i, fid := range later {
		fr := &frames[i]
		pp, ok := ports[fid]
		fr.Resolved = ok
		fr.Tuple.SrcPort, fr.Tuple.DstPort = pp[0], pp[1] // 0, 0: datagram without its first fragment
	}
	return frames
}

func mustAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		panic(fmt.Sprintf("tsharkoracle: tshark printed address %q: %v", s, err))
	}
	return a
}

// atoi parses tshark's decimal or 0x-hex number, the first of a
// comma-separated list; anything else is 0.
func atoi(s string) int {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	n, _ := strconv.ParseInt(s, 0, 64)
	return int(n)
}

// Key is a direction-free flow identity: protocol and the two endpoints
// in order, ports only for TCP, UDP and SCTP. VLANs, ICMP types and codes
// are left out (all such flows of an address pair add up). It is what
// tapir's records and tshark's frames are summed by when compared.
type Key struct {
	Proto uint8
	A, B  netip.AddrPort
}

// KeyOf returns the direction-free key of an IP tuple.
func KeyOf(t flow.Tuple) Key {
	return MakeKey(t.Proto, t.Src.Netip(t.Family), t.Dst.Netip(t.Family), t.SrcPort, t.DstPort)
}

// MakeKey returns the direction-free key of a flow given by its parts
// (ports are dropped unless the protocol has them).
func MakeKey(proto uint8, src, dst netip.Addr, sport, dport uint16) Key {
	if !flow.HasPorts(proto) {
		sport, dport = 0, 0
	}
	a, b := netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return Key{proto, a, b}
}

func (k Key) String() string {
	return fmt.Sprintf("%s %s <-> %s", flow.ProtoName(k.Proto), k.A, k.B)
}

// Sum is a packet and byte (frame.len) count.
type Sum struct{ Packets, Bytes uint64 }

// Sums adds up the IP frames' packets and frame.len per Key; non-IP
// frames are left out.
func Sums(frames []Frame) map[Key]Sum {
	out := map[Key]Sum{}
	for i := range frames {
		fr := &frames[i]
		if !fr.IP {
			continue
		}
		k := KeyOf(fr.Tuple)
		s := out[k]
		s.Packets++
		s.Bytes += uint64(fr.Len)
		out[k] = s
	}
	return out
}

// RecordSums adds up the packets and bytes of both directions of IP flow
// records per Key, as Sums does for tshark's frames (the caller picks the
// records, e.g. final ones only).
func RecordSums(recs []flow.Record) map[Key]Sum {
	out := map[Key]Sum{}
	for i := range recs {
		r := &recs[i]
		if r.Tuple.Family != flow.FamilyIPv4 && r.Tuple.Family != flow.FamilyIPv6 {
			continue
		}
		k := KeyOf(r.Tuple)
		s := out[k]
		s.Packets += r.Source.Packets + r.Destination.Packets
		s.Bytes += r.Source.Bytes + r.Destination.Bytes
		out[k] = s
	}
	return out
}

// FragmentCaptures are the shared captures (relative to the pcaps
// directory) whose IP datagrams are fragmented, IPv4 and IPv6.
var FragmentCaptures = []string{
	"zeek/ipv6-fragmented-dns.pcap",
	"zeek/fragmented-1.pcap", "zeek/fragmented-2.pcap", "zeek/fragmented-3.pcap", "zeek/fragmented-4.pcap",
	"suricata-verify/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap",
	"suricata-verify/bug-6887-defrag-ipv6-tcp/frag-ip-tcp.pcap",
}
