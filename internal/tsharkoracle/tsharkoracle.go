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
	var frames []Frame
	frags := fragments{ports: map[fragID][2]uint16{}, later: map[int]fragID{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < nFields {
			f = append(f, "")
		}
		fr := Frame{Number: atoi(f[fNumber]), Epoch: f[fEpoch], Len: atoi(f[fLen]), CapLen: atoi(f[fCapLen])}
		n, ok := networkOf(f)
		if !ok {
			frames = append(frames, fr) // not IP
			continue
		}
		sport, dport := portsOf(n.proto, f)
		fr.IP = true
		var fam uint8
		fr.Tuple.Src, fam = flow.AddrFromNetip(n.src)
		fr.Tuple.Dst, _ = flow.AddrFromNetip(n.dst)
		fr.Tuple.Family, fr.Tuple.Proto, fr.Tuple.SrcPort, fr.Tuple.DstPort = fam, n.proto, sport, dport
		if n.frag != nil {
			frags.note(&fr, len(frames), *n.frag, n.first)
		}
		frames = append(frames, fr)
	}
	frags.resolve(frames)
	return frames
}

// fragID names the datagram a fragment belongs to.
type fragID struct {
	proto    uint8
	src, dst netip.Addr
	id       string
}

// network is a frame's outermost IP header: addresses, the transport
// protocol and, for a fragment, its datagram and whether it is the first.
type network struct {
	src, dst netip.Addr
	proto    uint8
	frag     *fragID // nil: not a fragment
	first    bool
}

// networkOf reads the outermost network layer (from the protocol stack);
// false when there is no IP layer.
func networkOf(f []string) (network, bool) {
	outer := ""
	for _, p := range strings.Split(f[fProtocols], ":") {
		if p == "ip" || p == "ipv6" {
			outer = p
			break
		}
	}
	switch {
	case outer == "ip" && f[fIPSrc] != "":
		return ipv4Network(f), true
	case outer == "ipv6" && f[fIP6Src] != "":
		return ipv6Network(f), true
	default:
		return network{}, false
	}
}

// ipv4Network reads an IPv4 header.
func ipv4Network(f []string) network {
	n := network{src: mustAddr(f[fIPSrc]), dst: mustAddr(f[fIPDst]), proto: uint8(atoi(f[fIPProto])), first: true}
	off := atoi(f[fIPFragOffset])
	if off != 0 || f[fIPMF] == "1" || f[fIPMF] == "True" {
		n.frag = &fragID{n.proto, n.src, n.dst, f[fIPID]}
		n.first = off == 0
	}
	return n
}

// ipv6Network reads an IPv6 header, walking the extension headers to the
// transport protocol.
func ipv6Network(f []string) network {
	n := network{src: mustAddr(f[fIP6Src]), dst: mustAddr(f[fIP6Dst]), proto: uint8(atoi(f[fIP6Nxt])), first: true}
	for range 8 { // walk the extension headers
		switch n.proto {
		case 0:
			n.proto = uint8(atoi(f[fIP6HopNxt]))
		case 60:
			n.proto = uint8(atoi(f[fIP6DstNxt]))
		case 43:
			n.proto = uint8(atoi(f[fIP6RoutingNxt]))
		case 44:
			n.proto = uint8(atoi(f[fIP6FragNxt]))
			n.frag = &fragID{n.proto, n.src, n.dst, f[fIP6FragIdent]}
			n.first = atoi(f[fIP6FragOffset]) == 0
		}
	}
	return n
}

// portsOf is the transport's port pair (ICMP: type and code).
func portsOf(proto uint8, f []string) (sport, dport uint16) {
	switch proto {
	case flow.ProtoTCP:
		return uint16(atoi(f[fTCPSrc])), uint16(atoi(f[fTCPDst]))
	case flow.ProtoUDP:
		return uint16(atoi(f[fUDPSrc])), uint16(atoi(f[fUDPDst]))
	case flow.ProtoSCTP:
		return uint16(atoi(f[fSCTPSrc])), uint16(atoi(f[fSCTPDst]))
	case flow.ProtoICMP:
		return uint16(atoi(f[fICMPType])), uint16(atoi(f[fICMPCode]))
	case flow.ProtoICMPv6:
		return uint16(atoi(f[fICMP6Type])), uint16(atoi(f[fICMP6Code]))
	}
	return 0, 0
}

// fragments gives non-first fragments the ports of their datagram's
// first fragment.
type fragments struct {
	ports map[fragID][2]uint16
	later map[int]fragID // index of a non-first fragment -> its datagram
}

// note records fragment fr, at index i of the frames.
func (fs *fragments) note(fr *Frame, i int, id fragID, first bool) {
	fr.Fragment = true
	if first {
		fs.ports[id] = [2]uint16{fr.Tuple.SrcPort, fr.Tuple.DstPort}
		return
	}
	fr.NonFirst = true
	fs.later[i] = id
}

// resolve sets the non-first fragments' ports.
func (fs *fragments) resolve(frames []Frame) {
	for i, fid := range fs.later {
		fr := &frames[i]
		pp, ok := fs.ports[fid]
		fr.Resolved = ok
		fr.Tuple.SrcPort, fr.Tuple.DstPort = pp[0], pp[1] // 0, 0: datagram without its first fragment
	}
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
