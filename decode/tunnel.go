package decode

import (
	"encoding/binary"

	"github.com/tapir-sensor/tapir/flow"
)

// Tunnel depth limits.
const (
	// MaxTunnels is the most tunnel levels a Packet records and Decode
	// strips (the length of Packet.Tunnels).
	MaxTunnels = 4
	// DefaultTunnelDepth is the number of levels stripped when
	// Options.TunnelDepth is 0.
	DefaultTunnelDepth = 4
)

// Standard UDP ports of the UDP tunnels.
const (
	PortVXLAN  = 4789
	PortGeneve = 6081
	PortGTPU   = 2152
	PortTeredo = 3544
)

// Options tune Decode. The zero value is the default: tunnels stripped to
// DefaultTunnelDepth levels, UDP tunnels recognised on their standard
// ports (either the source or the destination port, as tshark does).
type Options struct {
	// TunnelDepth is how many tunnel levels are stripped: 0 means
	// DefaultTunnelDepth, a negative value none (the outer header is the
	// flow, as before tunnels were decoded); values above MaxTunnels
	// mean MaxTunnels.
	TunnelDepth int
	// VXLANPorts, GenevePorts, GTPUPorts and TeredoPorts are the UDP
	// ports on which each tunnel is recognised; nil means the standard
	// port alone (4789, 6081, 2152, 3544), an empty non-nil slice none.
	VXLANPorts, GenevePorts, GTPUPorts, TeredoPorts []uint16
	// Mirror, when set, is the mirror encapsulation of the interface:
	// an outermost tunnel level of that type is stripped whatever
	// TunnelDepth (which then counts the levels inside it), marked
	// flow.Tunnel.Mirror and counted in Packet.MirrorLevels, and its
	// identifier goes into Tuple.InnerVLAN as MirrorKey and, whole, into
	// Tuple.Mirror.
	Mirror Mirror
	// TunnelFilter, when set, is the sensor's selection by tunnel fields
	// (ParseTunnelFilter): Keep reports whether a decoded packet passes
	// it. Decode itself ignores it.
	TunnelFilter *TunnelFilter
}

// defaultOptions is what the package-level Decode uses.
var defaultOptions Options

// depth returns the number of levels o strips.
func (o *Options) depth() int {
	switch {
	case o.TunnelDepth == 0:
		return DefaultTunnelDepth
	case o.TunnelDepth < 0:
		return 0
	case o.TunnelDepth > MaxTunnels:
		return MaxTunnels
	}
	return o.TunnelDepth
}

// portIn reports whether sport or dport is in ports (def alone when ports
// is nil).
func portIn(ports []uint16, def, sport, dport uint16) bool {
	if ports == nil {
		return sport == def || dport == def
	}
	for _, q := range ports {
		if sport == q || dport == q {
			return true
		}
	}
	return false
}

// udpTunnel returns the tunnel type UDP ports sport and dport carry, or
// TunnelNone.
func (o *Options) udpTunnel(sport, dport uint16) flow.TunnelType {
	switch {
	case portIn(o.VXLANPorts, PortVXLAN, sport, dport):
		return flow.TunnelVXLAN
	case portIn(o.GenevePorts, PortGeneve, sport, dport):
		return flow.TunnelGeneve
	case portIn(o.GTPUPorts, PortGTPU, sport, dport):
		return flow.TunnelGTPU
	case portIn(o.TeredoPorts, PortTeredo, sport, dport):
		return flow.TunnelTeredo
	}
	return flow.TunnelNone
}

// tunnelProto reports whether IP protocol proto is a tunnel of its own
// (IP-in-IP or GRE), whatever the ports.
func tunnelProto(proto uint8) bool {
	return proto == 4 || proto == 41 || proto == 47
}

// Inner payload kinds a tunnel header announces, beside real ethertypes.
const (
	innerEthernet = 0x6558 // transparent Ethernet bridging: an Ethernet frame
	innerGuessIP  = 0      // an IP packet of either version (version nibble)
)

// tunnelHdr is a parsed tunnel header: what follows it and where.
type tunnelHdr struct {
	typ   flow.TunnelType
	id    uint32
	hasID bool
	inner uint16 // ethertype of the payload, innerEthernet or innerGuessIP
	off   int    // start of the payload
}

// parseResult says what parsing a tunnel header found.
type parseResult uint8

const (
	parseOK        parseResult = iota
	parseNot                   // not a tunnel the decoder takes apart (GRE version 1, GTP-U signalling...)
	parseTruncated             // the frame ends inside the tunnel header
)

// maybeTunnel is called once a transport header (or the IP payload of
// protocols 4, 41 and 47) was decoded: when p is a tunnel the options
// allow, it strips it and decodes the inner packet into p. frame ends at
// the end of the IP packet.
func maybeTunnel(frame []byte, p *Packet, o *Options) {
	outermost := p.NTunnels == 0
	if o.depth() == 0 && (!outermost || o.Mirror.Type == flow.TunnelNone) {
		return
	}
	var typ flow.TunnelType
	switch p.Proto {
	case 4, 41:
		typ = flow.TunnelIPIP
	case 47:
		typ = flow.TunnelGRE
	case flow.ProtoUDP:
		if !p.HasPorts {
			return
		}
		if outermost {
			typ = o.Mirror.udpType(p.Tuple.SrcPort, p.Tuple.DstPort)
		}
		if typ == flow.TunnelNone {
			typ = o.udpTunnel(p.Tuple.SrcPort, p.Tuple.DstPort)
		}
		if typ == flow.TunnelNone {
			return
		}
	default:
		return
	}
	if p.IsFragment {
		p.TunnelFragment = true
		return
	}
	h, res := parseTunnel(frame, typ, p)
	switch res {
	case parseNot:
		return
	case parseTruncated:
		p.Status |= StatusTruncated
		p.OpaqueTunnel = typ
		return
	}
	mirror := outermost && o.Mirror.matches(h.typ)
	if !mirror && int(p.NTunnels) >= min(o.depth()+int(p.MirrorLevels), MaxTunnels) {
		p.TunnelDepthHit = true
		return
	}
	decapsulate(frame, &h, p, o, mirror)
}

// parseTunnel parses the tunnel header of type typ at p.PayloadOffset.
func parseTunnel(frame []byte, typ flow.TunnelType, p *Packet) (tunnelHdr, parseResult) {
	off := p.PayloadOffset
	switch typ {
	case flow.TunnelIPIP:
		et := uint16(EtherTypeIPv4)
		if p.Proto == 41 {
			et = EtherTypeIPv6
		}
		return tunnelHdr{typ: typ, inner: et, off: off}, parseOK
	case flow.TunnelGRE:
		return parseGRE(frame, off)
	case flow.TunnelVXLAN:
		return parseVXLAN(frame, off)
	case flow.TunnelGeneve:
		return parseGeneve(frame, off)
	case flow.TunnelGTPU:
		return parseGTPU(frame, off)
	case flow.TunnelTeredo:
		return parseTeredo(frame, off)
	}
	return tunnelHdr{}, parseNot
}

// GRE flag bits (RFC 2784, RFC 2890).
const (
	greChecksum = 0x8000
	greRouting  = 0x4000
	greKey      = 0x2000
	greSequence = 0x1000
	greVersion  = 0x0007
)

// GRE protocol types for ERSPAN.
const (
	greERSPAN12 = 0x88be // ERSPAN type I (no sequence number) and II
	greERSPAN3  = 0x22eb
)

// parseGRE parses a GRE header (version 0: checksum, key and sequence
// number optional) and, for ERSPAN, the ERSPAN header after it.
func parseGRE(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+4 {
		return tunnelHdr{}, parseTruncated
	}
	flags := binary.BigEndian.Uint16(frame[off:])
	proto := binary.BigEndian.Uint16(frame[off+2:])
	if flags&(greVersion|greRouting) != 0 {
		return tunnelHdr{}, parseNot // enhanced GRE (PPTP) or source routing
	}
	h := tunnelHdr{typ: flow.TunnelGRE, inner: proto}
	n := off + 4
	if flags&greChecksum != 0 {
		n += 4
	}
	if flags&greKey != 0 {
		if len(frame) < n+4 {
			return tunnelHdr{}, parseTruncated
		}
		h.id, h.hasID = binary.BigEndian.Uint32(frame[n:]), true
		n += 4
	}
	if flags&greSequence != 0 {
		n += 4
	}
	if len(frame) < n {
		return tunnelHdr{}, parseTruncated
	}
	h.off = n
	switch proto {
	case greERSPAN12:
		if flags&greSequence == 0 {
			h.typ, h.inner = flow.TunnelERSPAN1, innerEthernet
			return h, parseOK
		}
		return parseERSPAN2(frame, n)
	case greERSPAN3:
		return parseERSPAN3(frame, n)
	}
	return h, parseOK
}

// parseERSPAN2 parses an ERSPAN type II header (8 bytes; the session ID
// is the low 10 bits of the second 16-bit word); an Ethernet frame
// follows.
func parseERSPAN2(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+8 {
		return tunnelHdr{}, parseTruncated
	}
	return tunnelHdr{typ: flow.TunnelERSPAN2, id: uint32(binary.BigEndian.Uint16(frame[off+2:]) & 0x3ff), hasID: true,
		inner: innerEthernet, off: off + 8}, parseOK
}

// parseERSPAN3 parses an ERSPAN type III header: 12 bytes, 8 more when
// the O bit announces a platform-specific subheader. The frame type (FT)
// is 0 for Ethernet, 2 for IP; others are not taken apart.
func parseERSPAN3(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+12 {
		return tunnelHdr{}, parseTruncated
	}
	h := tunnelHdr{typ: flow.TunnelERSPAN3, id: uint32(binary.BigEndian.Uint16(frame[off+2:]) & 0x3ff), hasID: true, off: off + 12}
	if frame[off+11]&1 != 0 {
		h.off += 8
	}
	switch (frame[off+10] >> 2) & 0x1f {
	case 0:
		h.inner = innerEthernet
	case 2:
		h.inner = innerGuessIP
	default:
		return tunnelHdr{}, parseNot
	}
	if len(frame) < h.off {
		return tunnelHdr{}, parseTruncated
	}
	return h, parseOK
}

// parseVXLAN parses an 8-byte VXLAN header (RFC 7348); an Ethernet frame
// follows. The VNI counts as present when the I flag is set.
func parseVXLAN(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+8 {
		return tunnelHdr{}, parseTruncated
	}
	return tunnelHdr{typ: flow.TunnelVXLAN, id: binary.BigEndian.Uint32(frame[off+4:]) >> 8, hasID: frame[off]&0x08 != 0,
		inner: innerEthernet, off: off + 8}, parseOK
}

// parseGeneve parses a Geneve header (RFC 8926): version 0, options
// skipped by their length; the protocol type says what follows (0x6558
// Ethernet, or an ethertype).
func parseGeneve(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+8 {
		return tunnelHdr{}, parseTruncated
	}
	if frame[off]>>6 != 0 {
		return tunnelHdr{}, parseNot
	}
	h := tunnelHdr{typ: flow.TunnelGeneve, id: binary.BigEndian.Uint32(frame[off+4:]) >> 8, hasID: true,
		inner: binary.BigEndian.Uint16(frame[off+2:]), off: off + 8 + int(frame[off]&0x3f)*4}
	if len(frame) < h.off {
		return tunnelHdr{}, parseTruncated
	}
	return h, parseOK
}

// gtpGPDU is the GTP-U message type of a user data packet.
const gtpGPDU = 0xff

// parseGTPU parses a GTP-U version 1 header carrying a G-PDU: 8 bytes, 4
// more when any of the E, S or PN flags is set, then the extension header
// chain (each a length in 4-byte units, its content, and the next type in
// its last byte). An IP packet follows. Other messages (echo, error
// indication, end marker) are not tunnelled traffic.
func parseGTPU(frame []byte, off int) (tunnelHdr, parseResult) {
	if len(frame) < off+8 {
		return tunnelHdr{}, parseTruncated
	}
	flags := frame[off]
	if flags>>5 != 1 || flags&0x10 == 0 || frame[off+1] != gtpGPDU {
		return tunnelHdr{}, parseNot
	}
	h := tunnelHdr{typ: flow.TunnelGTPU, id: binary.BigEndian.Uint32(frame[off+4:]), hasID: true, inner: innerGuessIP}
	n := off + 8
	if flags&0x07 != 0 {
		if len(frame) < n+4 {
			return tunnelHdr{}, parseTruncated
		}
		next := frame[n+3]
		n += 4
		for next != 0 {
			if len(frame) < n+1 {
				return tunnelHdr{}, parseTruncated
			}
			l := int(frame[n]) * 4
			if l == 0 {
				return tunnelHdr{}, parseNot
			}
			if len(frame) < n+l {
				return tunnelHdr{}, parseTruncated
			}
			next = frame[n+l-1]
			n += l
		}
	}
	h.off = n
	return h, parseOK
}

// parseTeredo parses the optional Teredo authentication and origin
// indications (RFC 4380 5.1.1) before the IPv6 packet. Anything that is
// not IPv6 after them is not Teredo.
func parseTeredo(frame []byte, off int) (tunnelHdr, parseResult) {
	n := off
	if len(frame) >= n+2 && binary.BigEndian.Uint16(frame[n:]) == 0x0001 {
		if len(frame) < n+4 {
			return tunnelHdr{}, parseTruncated
		}
		n += 4 + int(frame[n+2]) + int(frame[n+3]) + 8 + 1 // ids, auth value, nonce, confirmation
	}
	if len(frame) >= n+2 && binary.BigEndian.Uint16(frame[n:]) == 0x0000 {
		n += 8 // origin port and address
	}
	if len(frame) <= n {
		return tunnelHdr{}, parseTruncated
	}
	if frame[n]>>4 != 6 {
		return tunnelHdr{}, parseNot
	}
	return tunnelHdr{typ: flow.TunnelTeredo, inner: EtherTypeIPv6, off: n}, parseOK
}

// decapsulate records the tunnel level h in p and decodes what it
// carries. When no complete IP header is found inside (a non-IP payload,
// a frame cut short), p goes back to the tunnel's own connection, keeps
// the truncation, and records the tunnel as opaque.
func decapsulate(frame []byte, h *tunnelHdr, p *Packet, o *Options, mirror bool) {
	saved := *p
	lvl := &p.Tunnels[p.NTunnels]
	*lvl = flow.Tunnel{Src: p.Tuple.Src, Dst: p.Tuple.Dst, ID: h.id, SrcPort: p.Tuple.SrcPort, DstPort: p.Tuple.DstPort,
		Type: h.typ, Family: p.Tuple.Family, Proto: p.Proto, HasID: h.hasID, Mirror: mirror}
	if mirror {
		p.MirrorLevels = 1
	}
	if p.NTunnels == 0 {
		p.Outer = p.Tuple
		p.OuterL3Offset = p.L3Offset
	}
	p.NTunnels++
	resetInner(p)
	switch h.inner {
	case innerEthernet:
		decodeEthernet(frame, h.off, p, o)
	case innerGuessIP:
		decodeGuessIP(frame, h.off, p, o)
	default:
		decodeEtherType(frame, h.inner, h.off, p, o)
	}
	if !p.HasTuple && mirror && h.inner == innerEthernet && len(frame) >= h.off+14 {
		// A mirrored frame that is not IP (ARP, LLDP...): the mirror
		// level stays stripped, the frame is the mirrored one.
		p.LinkOffset = h.off
		setMirrorKey(&p.Tuple, h.id)
		return
	}
	if !p.HasTuple {
		cut := p.Status & StatusTruncated
		*p = saved
		p.Status |= cut
		p.OpaqueTunnel = h.typ
		p.OpaqueID, p.OpaqueHasID = h.id, h.hasID
		return
	}
	if mirror {
		setMirrorKey(&p.Tuple, h.id)
	}
}

// setMirrorKey marks t as arrived in the mirror encapsulation whose
// identifier is id: the 16-bit MirrorKey in InnerVLAN, the whole id in
// Mirror.
func setMirrorKey(t *flow.Tuple, id uint32) {
	t.InnerVLAN, t.Mirror = MirrorKey(id), id
}

// resetInner clears what the inner packet's decode fills, keeping the
// VLAN and MPLS counts (tags inside a tunnel add to them) and the tunnel
// chain.
func resetInner(p *Packet) {
	vlan, inner := p.Tuple.VLAN, p.Tuple.InnerVLAN
	p.Tuple = flow.Tuple{VLAN: vlan, InnerVLAN: inner}
	p.HasTuple, p.HasPorts = false, false
	p.Proto, p.TCPFlags = 0, 0
	p.IsFragment, p.MoreFragments, p.FragOffset, p.FragID = false, false, 0, 0
	p.L3Offset, p.L4Offset, p.PayloadOffset, p.PayloadLen = 0, 0, 0, 0
}

// decodeGuessIP decodes an IP packet of the version its first nibble
// says (GTP-U, ERSPAN III with an IP frame type).
func decodeGuessIP(frame []byte, off int, p *Packet, o *Options) {
	if len(frame) <= off {
		p.Status |= StatusTruncated
		return
	}
	switch frame[off] >> 4 {
	case 4:
		p.EtherType = EtherTypeIPv4
		decodeIPv4(frame, off, p, o)
	case 6:
		p.EtherType = EtherTypeIPv6
		decodeIPv6(frame, off, p, o)
	default:
		p.Status |= StatusUnsupported
	}
}
