package flow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IP protocol numbers that tapir treats specially.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

// Address families used in Tuple.Family and Key.Family.
//
// FamilyLink marks a pseudo flow of traffic that is not IP (ARP, LLDP,
// frames the decoder could not take apart): Src and Dst then hold the
// frame's MAC addresses in their first 6 bytes (zero when the link type
// has none), SrcPort holds the EtherType (0 when unknown), and Proto is 0.
// Such traffic is still captured, stored and counted; it has no
// Community ID.
const (
	FamilyLink = 1
	FamilyIPv4 = 4
	FamilyIPv6 = 6
)

// Addr is an IP address in 16-byte form. IPv4 addresses are stored
// IPv4-mapped (::ffff:a.b.c.d), so that byte-wise comparison orders IPv4
// addresses exactly as comparing their 4-byte forms would; the Family
// field of the enclosing Tuple or Key says which form is meant.
type Addr [16]byte

// AddrFrom4 returns the 16-byte form of an IPv4 address.
func AddrFrom4(b [4]byte) Addr {
	return Addr{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
}

// AddrFromNetip converts a netip.Addr (either family) to an Addr and its family.
func AddrFromNetip(a netip.Addr) (Addr, uint8) {
	if a.Is4() || a.Is4In6() {
		return AddrFrom4(a.Unmap().As4()), FamilyIPv4
	}
	return Addr(a.As16()), FamilyIPv6
}

// Netip returns the address as a netip.Addr of the given family.
func (a Addr) Netip(family uint8) netip.Addr {
	if family == FamilyIPv4 {
		return netip.AddrFrom4([4]byte{a[12], a[13], a[14], a[15]})
	}
	return netip.AddrFrom16(a)
}

// Bytes returns the address bytes that go on the wire for the family:
// 4 bytes for IPv4, 16 for IPv6, the 6-byte MAC for FamilyLink. The
// result aliases a.
func (a *Addr) Bytes(family uint8) []byte {
	switch family {
	case FamilyIPv4:
		return a[12:16]
	case FamilyLink:
		return a[:6]
	}
	return a[:]
}

// Tuple is the directional flow tuple of one packet, as the decoder sees it:
// Src is the packet's sender. For ICMP and ICMPv6, SrcPort holds the message
// type and DstPort the code (the decoder fills them so); Key and CommunityID
// apply the Community ID type pairing. Protocols without ports leave both 0.
//
// VLAN is the outermost 802.1Q/802.1ad VLAN ID and InnerVLAN the next one
// (QinQ); 0 means untagged (a priority tag with VLAN ID 0 counts as
// untagged).
//
// Mirror is the whole identifier (VXLAN or Geneve VNI, ERSPAN session
// ID, GRE key) of the mirror encapsulation a packet arrived in on a
// mirror interface, and 0 elsewhere (or when that header has none).
// InnerVLAN then holds the 16-bit mirror key decode.MirrorKey derives
// from it (4096 and up, so it never reads as a VLAN), which folds
// identifiers above 61439; Mirror keeps every 24-bit VNI and 32-bit key
// apart in the flow key. It stays on the sensor: blocks and records
// carry the identifier in their tunnel chain instead.
type Tuple struct {
	Src, Dst         Addr
	SrcPort, DstPort uint16
	Proto            uint8
	Family           uint8
	VLAN, InnerVLAN  uint16
	Mirror           uint32
}

// Key is the canonical, direction-free identity of a bidirectional flow:
// the endpoints of a Tuple ordered as the Community ID orders them (lower
// address first; on equal addresses, lower port first). Key is comparable
// and is used as a map key and, encoded, as the prefix of storage row keys
// (Mirror, a sensor-side field as in Tuple, is not encoded).
type Key struct {
	A, B            Addr
	PortA, PortB    uint16
	Proto           uint8
	Family          uint8
	VLAN, InnerVLAN uint16
	Mirror          uint32
}

// Key returns the canonical key of the tuple and whether the tuple runs in
// the key's forward direction (Src is A). ICMP and ICMPv6 type/code pairs
// are mapped first so that a request and its reply share one key; one-way
// ICMP messages keep the direction of the packet.
func (t Tuple) Key() (Key, bool) {
	var k Key
	fwd := t.KeyInto(&k)
	return k, fwd
}

// KeyInto is Key writing into *k, without copying the tuple: for the
// per-packet path.
//
// The two directions of a conversation alternate in traffic, so which
// endpoint comes first is a coin toss for the branch predictor: the
// endpoints are swapped with masks instead of a branch.
func (t *Tuple) KeyInto(k *Key) bool {
	sp, dp, oneWay := portEquivalents(t.Proto, t.Family, t.SrcPort, t.DstPort)
	fwd := oneWay || ordered(&t.Src, &t.Dst, sp, dp)
	var swap uint64 // all ones when the tuple runs from B to A
	if !fwd {
		swap = ^uint64(0)
	}
	le := binary.LittleEndian
	s0, s1 := le.Uint64(t.Src[:8]), le.Uint64(t.Src[8:])
	d0, d1 := le.Uint64(t.Dst[:8]), le.Uint64(t.Dst[8:])
	x0, x1 := (s0^d0)&swap, (s1^d1)&swap
	le.PutUint64(k.A[:8], s0^x0)
	le.PutUint64(k.A[8:], s1^x1)
	le.PutUint64(k.B[:8], d0^x0)
	le.PutUint64(k.B[8:], d1^x1)
	xp := (sp ^ dp) & uint16(swap)
	k.PortA, k.PortB = sp^xp, dp^xp
	k.Proto, k.Family, k.VLAN, k.InnerVLAN, k.Mirror = t.Proto, t.Family, t.VLAN, t.InnerVLAN, t.Mirror
	return fwd
}

// ordered reports whether (a, ap) sorts before or equal to (b, bp) in
// Community ID order.
func ordered(a, b *Addr, ap, bp uint16) bool {
	// Two big-endian words compare like bytes.Compare, without the call.
	if a0, b0 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); a0 != b0 {
		return a0 < b0
	}
	if a1, b1 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]); a1 != b1 {
		return a1 < b1
	}
	return ap <= bp
}

// Reverse returns the tuple seen from the other side.
func (t Tuple) Reverse() Tuple {
	t.Src, t.Dst = t.Dst, t.Src
	t.SrcPort, t.DstPort = t.DstPort, t.SrcPort
	return t
}

// Forward returns the key as a tuple running from A to B.
func (k Key) Forward() Tuple {
	return Tuple{Src: k.A, Dst: k.B, SrcPort: k.PortA, DstPort: k.PortB,
		Proto: k.Proto, Family: k.Family, VLAN: k.VLAN, InnerVLAN: k.InnerVLAN, Mirror: k.Mirror}
}

// HasPorts reports whether the protocol carries ports (TCP, UDP, SCTP).
func HasPorts(proto uint8) bool {
	return proto == ProtoTCP || proto == ProtoUDP || proto == ProtoSCTP
}

// String renders the tuple as "proto src:port -> dst:port" for logs and errors.
func (t Tuple) String() string {
	if t.Family == FamilyLink {
		return fmt.Sprintf("link ethertype 0x%04x %s -> %s", t.SrcPort, MAC(t.Src), MAC(t.Dst))
	}
	s := fmt.Sprintf("%s %s -> %s", ProtoName(t.Proto),
		netip.AddrPortFrom(t.Src.Netip(t.Family), t.SrcPort),
		netip.AddrPortFrom(t.Dst.Netip(t.Family), t.DstPort))
	if t.VLAN != 0 {
		s += fmt.Sprintf(" vlan %d", t.VLAN)
		if t.InnerVLAN != 0 {
			s += fmt.Sprintf("/%d", t.InnerVLAN)
		}
	}
	return s
}

// String renders the key as its forward tuple.
func (k Key) String() string { return k.Forward().String() }

// ProtoName returns the lower-case ECS network.transport name of an IP
// protocol number ("tcp", "udp", "icmp", "ipv6-icmp", "sctp"), or the
// number in decimal for others.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "ipv6-icmp"
	case ProtoSCTP:
		return "sctp"
	case 2:
		return "igmp"
	case 46:
		return "rsvp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 89:
		return "ospf"
	}
	return fmt.Sprint(p)
}

// MAC renders the first 6 bytes of a link-layer pseudo flow address.
func MAC(a Addr) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5])
}
