// Package tsharkoracle is the tshark oracle the tests compare tapir
// against: it runs tshark on a capture and turns its per-frame fields into
// the flow tuples tapir should assign, with one set of rules for every
// test (the innermost IP header reached through the tunnels the sensor
// strips, transport ports, non-first IP fragments in their datagram's
// flow).
//
// It is a test helper: it takes a testing.TB and fails or skips through
// it. Its functions are safe for concurrent use.
package tsharkoracle

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
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
	// wire: addresses and protocol of the innermost IP header reached
	// through tunnels (see levelView; IPv6 extension headers are walked),
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
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"}
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
		// The innermost network layer the sensor keys on: tunnels
		// stripped, from the protocol stack.
		f, outer := levelView(f)
		n, ok := networkOf(f, outer)
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

// networkOf reads the network layer outer names ("ip" or "ipv6": the
// innermost one the sensor keys on, from levelView);
// false when there is no IP layer.
func networkOf(f []string, outer string) (network, bool) {
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

// tunnelTokens are the frame.protocols entries that may stand between an
// IP header and the IP header of the tunnel it carries, for the tunnels
// the sensor strips (IP-in-IP, GRE, ERSPAN, VXLAN, Geneve, GTP-U,
// Teredo, with Ethernet, VLANs and MPLS inside).
var tunnelTokens = map[string]bool{
	"gre": true, "erspan": true, "eth": true, "ethertype": true, "vlan": true, "mpls": true, "pwethcw": true,
	"udp": true, "vxlan": true, "geneve": true, "gtp": true, "teredo": true,
	"ipv6.hopopts": true, "ipv6.dstopts": true, "ipv6.routing": true,
}

// maxTunnels is the sensor decoder's default tunnel depth.
const maxTunnels = 4

// fieldProto names the frame.protocols entry each multi-valued field
// belongs to: its n-th value is that of the n-th such layer.
var fieldProto = map[int]string{
	fIPSrc: "ip", fIPDst: "ip", fIPProto: "ip", fIPID: "ip", fIPFragOffset: "ip", fIPMF: "ip",
	fIP6Src: "ipv6", fIP6Dst: "ipv6", fIP6Nxt: "ipv6",
	fIP6FragIdent: "ipv6.fraghdr", fIP6FragOffset: "ipv6.fraghdr", fIP6FragNxt: "ipv6.fraghdr",
	fIP6HopNxt: "ipv6.hopopts", fIP6DstNxt: "ipv6.dstopts", fIP6RoutingNxt: "ipv6.routing",
	fUDPSrc: "udp", fUDPDst: "udp",
}

// levelView picks the IP header the sensor keys a frame on, from tshark's
// fields printed with every occurrence: the outermost IP header, then
// through each tunnel (an IP header followed, through tunnelTokens only,
// by another) to the inner one, at most maxTunnels levels, stopping at an
// IP fragment (tunnels are not taken apart without reassembly) and at
// ICMP (the IP headers after it are quoted). It returns the fields with
// every value replaced by that level's ("ip" fields from the chosen IPv4
// header, UDP fields from the UDP header inside it...) and "ip", "ipv6"
// or "" for the chosen header's family.
func levelView(f []string) ([]string, string) {
	protos := strings.Split(f[fProtocols], ":")
	seen := map[string]int{}
	var at map[string]int // seen before the chosen header
	chosen, levels := -1, 0
scan:
	for i, p := range protos {
		switch p {
		case "ip", "ipv6":
			if chosen >= 0 {
				if levels == maxTunnels || !tunnelPath(protos[chosen+1:i]) || fragmented(f, protos[chosen], at) {
					break scan
				}
				levels++
			}
			chosen = i
			at = maps.Clone(seen)
		case "icmp", "icmpv6":
			break scan
		}
		seen[p]++
	}
	if chosen < 0 {
		return f, ""
	}
	out := make([]string, len(f))
	for i, v := range f {
		if i == fProtocols {
			out[i] = v
			continue
		}
		out[i] = nth(v, at[fieldProto[i]])
	}
	return out, protos[chosen]
}

// tunnelPath reports whether the protocol entries between two IP headers
// are those of a tunnel the sensor strips.
func tunnelPath(between []string) bool {
	for _, p := range between {
		if !tunnelTokens[p] {
			return false
		}
	}
	return true
}

// fragmented reports whether the IP header of family proto, whose field
// occurrences are counted in at, is a fragment.
func fragmented(f []string, proto string, at map[string]int) bool {
	if proto == "ip" {
		n := at["ip"]
		mf := nth(f[fIPMF], n)
		return atoi(nth(f[fIPFragOffset], n)) != 0 || mf == "1" || mf == "True"
	}
	return false // an IPv6 fragment header is not in tunnelTokens
}

// nth returns the n-th comma-separated value of s, or "".
func nth(s string, n int) string {
	for range n {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			return ""
		}
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[:i]
	}
	return s
}

// TunnelQuirkID returns the Community ID tshark gives a packet found
// inside tunnels (chain, outermost first) whose inner IP packet has no
// transport header tshark dissects (a non-first fragment, a protocol
// without ports such as RSVP), and true; "" and false when the packet is
// not such a case (noTransport false or no tunnel). tshark hashes the
// innermost IP addresses with the last transport it saw, the ports of the
// innermost UDP tunnel, as UDP; without a UDP tunnel, with the protocol
// of the outermost IP header of the inner one's family (47 for GRE over
// IPv4 carrying IPv4; the inner header's own protocol for IPv4 in IPv6),
// without ports. Neither is the Community ID of
// a connection (the sensor keys such packets on the inner connection, as
// the Community ID spec and Zeek do), so tests comparing with tshark set
// these IDs aside.
func TunnelQuirkID(seed uint16, inner flow.Tuple, chain []flow.Tunnel, noTransport bool) (string, bool) {
	if len(chain) == 0 || !noTransport {
		return "", false
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if chain[i].Proto == flow.ProtoUDP {
			t := flow.Tuple{Src: inner.Src, Dst: inner.Dst, Family: inner.Family, Proto: flow.ProtoUDP,
				SrcPort: chain[i].SrcPort, DstPort: chain[i].DstPort}
			return flow.CommunityID(seed, t), true
		}
	}
	proto := inner.Proto
	for i := range chain {
		if chain[i].Family == inner.Family {
			proto = chain[i].Proto
			break
		}
	}
	return IPOnlyCommunityID(seed, inner, proto), true
}

// IPOnlyCommunityID is the Community ID of the addresses of t with
// protocol proto and no ports, as tshark computes it for a packet without
// a transport header it dissects (a non-first fragment: the sensor puts
// it in its datagram's flow instead).
func IPOnlyCommunityID(seed uint16, t flow.Tuple, proto uint8) string {
	src, dst := t.Src.Bytes(t.Family), t.Dst.Bytes(t.Family)
	if bytes.Compare(src, dst) > 0 {
		src, dst = dst, src
	}
	b := binary.BigEndian.AppendUint16(nil, seed)
	b = append(append(append(b, src...), dst...), proto, 0)
	sum := sha1.Sum(b)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// Lines runs tshark with args and returns the lines it printed on
// standard output, empty ones included (nil when it printed nothing). It
// fails the test when tshark fails; tshark missing skips the test (fails
// it under TAPIR_REQUIRE_ALL).
func Lines(tb testing.TB, args ...string) []string {
	tb.Helper()
	out, err := exec.Command(testenv.Tool(tb, "tshark"), args...).Output()
	if err != nil {
		tb.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	if len(out) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}
