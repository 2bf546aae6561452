package decode

import (
	"encoding/binary"

	"github.com/tapir-sensor/tapir/flow"
)

// LinkType is a pcap LINKTYPE_* value.
type LinkType uint16

// Link types the decoder understands. Any other value decodes to
// StatusUnsupported.
const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	LinkEthernet  LinkType = 1   // Ethernet II / 802.3
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6 (version nibble)
	LinkLoop      LinkType = 108 // OpenBSD loopback: 4-byte address family, network byte order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
	LinkNFLOG     LinkType = 239 // Linux netfilter NFLOG: header + TLVs, the packet in NFULA_PAYLOAD
)

// Status is a bitmask describing problems met while decoding a frame.
// The zero Status means the frame decoded cleanly.
type Status uint8

// Status bits.
const (
	// StatusTruncated: the frame ended before a header the decoder needed.
	StatusTruncated Status = 1 << iota
	// StatusMalformed: a header field is impossible (bad IP version,
	// header length below the minimum, TCP data offset below 5...).
	StatusMalformed
	// StatusUnsupported: the link type, ethertype or encapsulation is one
	// the decoder does not handle (ARP, LLDP, LLC, unknown MPLS payload...).
	StatusUnsupported
)

// String lists the set bits, e.g. "truncated|malformed", or "ok".
func (s Status) String() string {
	if s == 0 {
		return "ok"
	}
	var out string
	for i, n := range [...]string{"truncated", "malformed", "unsupported"} {
		if s&(1<<i) != 0 {
			if out != "" {
				out += "|"
			}
			out += n
		}
	}
	if s&^7 != 0 {
		if out != "" {
			out += "|"
		}
		out += "unknown"
	}
	return out
}

// Ethertypes the decoder walks through or reports.
const (
	EtherTypeIPv4         = 0x0800
	EtherTypeARP          = 0x0806
	EtherTypeWakeOnLAN    = 0x0842
	EtherTypeRARP         = 0x8035
	EtherTypeVLAN         = 0x8100 // 802.1Q
	EtherTypeIPX          = 0x8137
	EtherTypeIPv6         = 0x86dd
	EtherTypeMACControl   = 0x8808
	EtherTypeSlow         = 0x8809 // LACP, marker, OAM
	EtherTypeMPLS         = 0x8847
	EtherTypeMPLSMcast    = 0x8848
	EtherTypePPPoEDisc    = 0x8863
	EtherTypePPPoE        = 0x8864 // PPPoE session
	EtherTypeEAPOL        = 0x888e
	EtherTypeQinQ         = 0x88a8 // 802.1ad
	EtherTypeLLDP         = 0x88cc
	EtherTypeMACsec       = 0x88e5
	EtherTypePTP          = 0x88f7
	EtherTypeFCoE         = 0x8906
	EtherTypeLoopback     = 0x9000 // Ethernet configuration testing protocol
	EtherTypeQinQOld      = 0x9100
	EtherTypeMaxLLCLength = 0x05ff // values up to this are 802.3 lengths (LLC follows)
)

// Packet is the decoded view of one frame. Decode overwrites every field.
// Offsets index the frame passed to Decode; an offset is 0 when its layer
// was not reached.
type Packet struct {
	// Tuple is filled when HasTuple. For ICMP and ICMPv6, SrcPort is the
	// message type and DstPort the code. VLAN and InnerVLAN are the first
	// two 802.1Q/802.1ad VLAN IDs (0: untagged or priority tag).
	Tuple flow.Tuple
	// HasTuple reports that an IPv4 or IPv6 header was found: addresses,
	// Family and Proto are valid. Ports may still be missing (non-first
	// fragment, truncated transport header).
	HasTuple bool
	// EtherType is the innermost ethertype reached. Link types that carry
	// IP directly (raw, NULL/LOOP) report 0x0800 or 0x86dd; MPLS and PPPoE
	// report the ethertype of what they carry when it is IP.
	EtherType uint16
	// Proto is the IP protocol of the transport, after IPv6 extension
	// headers (50 for ESP, 59 for no next header). Equal to Tuple.Proto.
	Proto uint8
	// TCPFlags is the TCP flags byte (CWR..FIN) when Proto is TCP.
	TCPFlags uint8
	// HasPorts reports that the transport header was reached far enough
	// to read the ports (or ICMP type and code).
	HasPorts bool

	// IsFragment reports an IPv4 packet with MF set or a non-zero offset,
	// or an IPv6 packet with a fragment header.
	IsFragment    bool
	MoreFragments bool
	FragOffset    uint32 // fragment offset in bytes
	FragID        uint32 // IPv4 16-bit identification or IPv6 32-bit identification

	// MPLSLabels is the number of MPLS labels popped.
	MPLSLabels uint8
	// VLANTags is the number of 802.1Q/802.1ad tags seen (all of them,
	// including those beyond the two kept in the tuple).
	VLANTags uint8

	L3Offset      int // start of the IP header of Tuple (the innermost one reached)
	L4Offset      int // start of the transport header (after IPv6 extension headers)
	PayloadOffset int // start of the transport payload (after the TCP/UDP/SCTP/ICMP header)
	PayloadLen    int // payload bytes present in the frame, bounded by the IP length

	Status Status

	// NTunnels is the number of tunnel levels stripped: Tuple, the
	// offsets, fragment fields and TCP flags above are those of the
	// connection inside the innermost one. Tunnels[:NTunnels] is the
	// chain, outermost first; entries past NTunnels are zero.
	NTunnels uint8
	// Tunnels is the tunnel chain (see flow.Tunnel): per level its type,
	// outer addresses and VNI / GRE key / ERSPAN session / TEID.
	Tunnels [MaxTunnels]flow.Tunnel
	// Outer is the tuple of the outermost IP header, with its ports (the
	// tunnel's own connection, e.g. UDP to 4789 for VXLAN) when
	// NTunnels > 0; zero otherwise. OuterL3Offset is where that header
	// starts.
	Outer         flow.Tuple
	OuterL3Offset int
	// MirrorLevels is 1 when Tunnels[0] is the mirror encapsulation of a
	// mirror interface (Options.Mirror; Tunnels[0].Mirror is set), 0
	// otherwise. That level is how the traffic reached the sensor, not a
	// tunnel of the mirrored network: the tunnel's own outer flow must
	// not be accounted for it (only for Tunnels[MirrorLevels:NTunnels]),
	// and Tuple.InnerVLAN holds MirrorKey of its identifier, Tuple.Mirror
	// the identifier.
	MirrorLevels uint8
	// LinkOffset is where the Ethernet header of the frame decoded
	// starts: 0, or, for a mirrored frame that is not IP (HasTuple
	// false, MirrorLevels 1), the start of the frame inside the mirror
	// encapsulation, whose MAC addresses a link-layer pseudo flow takes.
	LinkOffset int
	// OpaqueTunnel is set when a tunnel of that type was found but its
	// payload held no complete IP header (ARP or CDP over VXLAN or
	// ERSPAN, a frame cut inside the inner headers): Tuple is then the
	// tunnel's own connection, as tshark's Community ID has it.
	OpaqueTunnel flow.TunnelType
	// OpaqueID is that tunnel's VNI / GRE key / ERSPAN session / TEID
	// when OpaqueHasID.
	OpaqueID    uint32
	OpaqueHasID bool
	// TunnelDepthHit reports a tunnel found below the configured depth:
	// Tuple is the deepest level allowed, the tunnel's own connection.
	TunnelDepthHit bool
	// TunnelFragment reports a tunnel (IP-in-IP, GRE, or a first UDP
	// fragment to a tunnel port) whose outer IP packet is a fragment: it
	// cannot be taken apart without reassembly, so Tuple is the outer
	// header's and every fragment of the datagram stays in one flow.
	TunnelFragment bool
}

// Decode decodes frame, captured with the given link type, into p, with
// the default options (tunnels stripped to DefaultMaxTunnels levels on
// their standard ports). It never allocates, never panics, and does not
// retain frame. It is safe to call concurrently with distinct Packets.
func Decode(link LinkType, frame []byte, p *Packet) {
	defaultOptions.Decode(link, frame, p)
}

// Decode is the package-level Decode with the options o. o must not be
// changed while a Decode with it runs.
func (o *Options) Decode(link LinkType, frame []byte, p *Packet) {
	*p = Packet{}
	switch link {
	case LinkEthernet:
		decodeEthernet(frame, 0, p, o)
	case LinkRaw:
		if len(frame) == 0 {
			p.Status |= StatusTruncated
			return
		}
		switch frame[0] >> 4 {
		case 4:
			p.EtherType = EtherTypeIPv4
			decodeIPv4(frame, 0, p, o)
		case 6:
			p.EtherType = EtherTypeIPv6
			decodeIPv6(frame, 0, p, o)
		default:
			p.Status |= StatusMalformed
		}
	case LinkIPv4:
		p.EtherType = EtherTypeIPv4
		decodeIPv4(frame, 0, p, o)
	case LinkIPv6:
		p.EtherType = EtherTypeIPv6
		decodeIPv6(frame, 0, p, o)
	case LinkNull, LinkLoop:
		decodeNull(frame, p, o)
	case LinkLinuxSLL:
		if len(frame) < 16 {
			p.Status |= StatusTruncated
			return
		}
		decodeSLLProto(frame, binary.BigEndian.Uint16(frame[14:]), 16, p, o)
	case LinkLinuxSLL2:
		if len(frame) < 20 {
			p.Status |= StatusTruncated
			return
		}
		decodeSLLProto(frame, binary.BigEndian.Uint16(frame[0:]), 20, p, o)
	case LinkNFLOG:
		decodeNFLOG(frame, p, o)
	default:
		p.Status |= StatusUnsupported
	}
}

// decodeNull handles LINKTYPE_NULL and LINKTYPE_LOOP: a 4-byte address
// family, accepted in either byte order (captures move between hosts).
func decodeNull(frame []byte, p *Packet, o *Options) {
	if len(frame) < 4 {
		p.Status |= StatusTruncated
		return
	}
	af := binary.LittleEndian.Uint32(frame)
	if af > 0xffff {
		af = binary.BigEndian.Uint32(frame)
	}
	switch af {
	case 2:
		p.EtherType = EtherTypeIPv4
		decodeIPv4(frame, 4, p, o)
	case 24, 28, 30:
		p.EtherType = EtherTypeIPv6
		decodeIPv6(frame, 4, p, o)
	default:
		p.Status |= StatusUnsupported
	}
}

// decodeNFLOG handles LINKTYPE_NFLOG: a 4-byte header (address family,
// version, resource id) and TLVs whose length and type are in host byte
// order (little-endian on the hosts that write such files; a length that
// only makes sense big-endian is read so), each padded to 4 bytes. The IP
// packet is the NFULA_PAYLOAD (type 9) TLV.
func decodeNFLOG(frame []byte, p *Packet, o *Options) {
	if len(frame) < 4 {
		p.Status |= StatusTruncated
		return
	}
	family := frame[0]
	off := 4
	for off+4 <= len(frame) {
		l := int(binary.LittleEndian.Uint16(frame[off:]))
		typ := binary.LittleEndian.Uint16(frame[off+2:])
		if l < 4 || off+l > len(frame) {
			if be := int(binary.BigEndian.Uint16(frame[off:])); be >= 4 && off+be <= len(frame) {
				l, typ = be, binary.BigEndian.Uint16(frame[off+2:])
			} else if l < 4 {
				p.Status |= StatusMalformed
				return
			}
		}
		if typ&0x7fff == 9 { // NFULA_PAYLOAD
			switch family {
			case 2:
				p.EtherType = EtherTypeIPv4
				decodeIPv4(frame, off+4, p, o)
			case 10:
				p.EtherType = EtherTypeIPv6
				decodeIPv6(frame, off+4, p, o)
			default:
				p.Status |= StatusUnsupported
			}
			return
		}
		off += (l + 3) &^ 3
	}
	p.Status |= StatusTruncated
}

// decodeSLLProto continues after a Linux cooked header whose protocol
// field is proto. Values below 0x0600 are ARPHRD-specific pseudo
// protocols (802.3, 802.2 LLC, CAN...) and are unsupported.
func decodeSLLProto(frame []byte, proto uint16, off int, p *Packet, o *Options) {
	if proto <= EtherTypeMaxLLCLength {
		p.EtherType = proto
		p.Status |= StatusUnsupported
		return
	}
	decodeEtherType(frame, proto, off, p, o)
}

// decodeEthernet decodes an Ethernet II header at off.
func decodeEthernet(frame []byte, off int, p *Packet, o *Options) {
	if len(frame) < off+14 {
		p.Status |= StatusTruncated
		return
	}
	et := binary.BigEndian.Uint16(frame[off+12:])
	if et <= EtherTypeMaxLLCLength {
		// 802.3 with an LLC header: not IP in practice.
		p.EtherType = et
		p.Status |= StatusUnsupported
		return
	}
	decodeEtherType(frame, et, off+14, p, o)
}

// maxEthernetNesting bounds Ethernet-over-MPLS recursion.
const maxEthernetNesting = 4

// decodeEtherType walks VLAN tags, MPLS and PPPoE from off, where the
// payload of ethertype et starts, and decodes the IP header it reaches.
func decodeEtherType(frame []byte, et uint16, off int, p *Packet, o *Options) {
	nesting := 0
	for {
		p.EtherType = et
		switch et {
		case EtherTypeIPv4:
			decodeIPv4(frame, off, p, o)
			return
		case EtherTypeIPv6:
			decodeIPv6(frame, off, p, o)
			return
		case EtherTypeVLAN, EtherTypeQinQ, EtherTypeQinQOld:
			if len(frame) < off+4 {
				p.Status |= StatusTruncated
				return
			}
			id := binary.BigEndian.Uint16(frame[off:]) & 0x0fff
			switch p.VLANTags {
			case 0:
				p.Tuple.VLAN = id
			case 1:
				p.Tuple.InnerVLAN = id
			}
			if p.VLANTags < 255 {
				p.VLANTags++
			}
			et = binary.BigEndian.Uint16(frame[off+2:])
			off += 4
			if et <= EtherTypeMaxLLCLength {
				p.EtherType = et
				p.Status |= StatusUnsupported
				return
			}
		case EtherTypeMPLS, EtherTypeMPLSMcast:
			// Pop labels until bottom of stack.
			for {
				if len(frame) < off+4 {
					p.Status |= StatusTruncated
					return
				}
				bos := frame[off+2]&1 != 0
				off += 4
				if p.MPLSLabels < 255 {
					p.MPLSLabels++
				}
				if bos {
					break
				}
			}
			if len(frame) <= off {
				p.Status |= StatusTruncated
				return
			}
			switch frame[off] >> 4 {
			case 4:
				et = EtherTypeIPv4
			case 6:
				et = EtherTypeIPv6
			case 0:
				// Pseudowire control word, then an Ethernet frame (EoMPLS).
				nesting++
				if nesting > maxEthernetNesting {
					p.Status |= StatusUnsupported
					return
				}
				off += 4
				if len(frame) < off+14 {
					p.Status |= StatusTruncated
					return
				}
				et = binary.BigEndian.Uint16(frame[off+12:])
				off += 14
				if et <= EtherTypeMaxLLCLength {
					p.EtherType = et
					p.Status |= StatusUnsupported
					return
				}
			default:
				p.Status |= StatusUnsupported
				return
			}
		case EtherTypePPPoE:
			// version/type, code, session ID, length, then the PPP protocol.
			if len(frame) < off+8 {
				p.Status |= StatusTruncated
				return
			}
			switch binary.BigEndian.Uint16(frame[off+6:]) {
			case 0x0021:
				et = EtherTypeIPv4
			case 0x0057:
				et = EtherTypeIPv6
			default:
				p.Status |= StatusUnsupported
				return
			}
			off += 8
		default:
			p.Status |= StatusUnsupported
			return
		}
	}
}

// decodeIPv4 decodes an IPv4 header at off.
func decodeIPv4(frame []byte, off int, p *Packet, o *Options) {
	p.L3Offset = off
	if len(frame) < off+20 {
		p.Status |= StatusTruncated
		return
	}
	h := frame[off:]
	if h[0]>>4 != 4 {
		p.Status |= StatusMalformed
		return
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 {
		p.Status |= StatusMalformed
		return
	}
	p.HasTuple = true
	p.Tuple.Family = flow.FamilyIPv4
	p.Proto = h[9]
	p.Tuple.Proto = h[9]
	p.Tuple.Src[10], p.Tuple.Src[11] = 0xff, 0xff
	p.Tuple.Dst[10], p.Tuple.Dst[11] = 0xff, 0xff
	copy(p.Tuple.Src[12:16], h[12:16])
	copy(p.Tuple.Dst[12:16], h[16:20])

	fo := binary.BigEndian.Uint16(h[6:])
	p.MoreFragments = fo&0x2000 != 0
	p.FragOffset = uint32(fo&0x1fff) * 8
	if p.MoreFragments || p.FragOffset != 0 {
		p.IsFragment = true
		p.FragID = uint32(binary.BigEndian.Uint16(h[4:]))
	}
	if len(h) < ihl {
		p.Status |= StatusTruncated
		return
	}
	end := len(frame)
	total := int(binary.BigEndian.Uint16(h[2:]))
	switch {
	case total == 0:
		// TSO/GSO: the length was left for the NIC to fill.
	case total < ihl:
		p.Status |= StatusMalformed
		return
	case off+total < end:
		end = off + total // trailing Ethernet padding
	}
	if p.FragOffset != 0 {
		// Non-first fragment: no transport header here.
		p.L4Offset = off + ihl
		p.PayloadOffset = off + ihl
		p.PayloadLen = end - p.PayloadOffset
		p.TunnelFragment = tunnelProto(p.Proto)
		return
	}
	decodeTransport(frame, off+ihl, end, p, o)
}

// decodeIPv6 decodes an IPv6 header and its extension headers at off.
func decodeIPv6(frame []byte, off int, p *Packet, o *Options) {
	p.L3Offset = off
	if len(frame) < off+40 {
		p.Status |= StatusTruncated
		return
	}
	h := frame[off:]
	if h[0]>>4 != 6 {
		p.Status |= StatusMalformed
		return
	}
	p.HasTuple = true
	p.Tuple.Family = flow.FamilyIPv6
	copy(p.Tuple.Src[:], h[8:24])
	copy(p.Tuple.Dst[:], h[24:40])
	end := len(frame)
	if plen := int(binary.BigEndian.Uint16(h[4:])); plen != 0 && off+40+plen < end {
		end = off + 40 + plen // trailing padding
	}
	next := h[6]
	off += 40
	for {
		p.Proto = next
		p.Tuple.Proto = next
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, dest opts, mobility, HIP, shim6
			if end < off+8 {
				p.Status |= StatusTruncated
				return
			}
			next = frame[off]
			off += 8 + int(frame[off+1])*8
		case 44: // fragment
			if end < off+8 {
				p.Status |= StatusTruncated
				return
			}
			fo := binary.BigEndian.Uint16(frame[off+2:])
			p.IsFragment = true
			p.MoreFragments = fo&1 != 0
			p.FragOffset = uint32(fo>>3) * 8
			p.FragID = binary.BigEndian.Uint32(frame[off+4:])
			next = frame[off]
			off += 8
			if p.FragOffset != 0 {
				p.Proto = next
				p.Tuple.Proto = next
				p.L4Offset = off
				p.PayloadOffset = off
				p.PayloadLen = end - off
				p.TunnelFragment = tunnelProto(p.Proto)
				return
			}
		case 51: // AH: length in 4-octet units minus 2
			if end < off+8 {
				p.Status |= StatusTruncated
				return
			}
			next = frame[off]
			off += (int(frame[off+1]) + 2) * 4
		default:
			if off > end {
				p.Status |= StatusTruncated
				return
			}
			decodeTransport(frame, off, end, p, o)
			return
		}
	}
}

// decodeTransport decodes the transport header of protocol p.Proto at off;
// end bounds the IP packet within frame.
func decodeTransport(frame []byte, off, end int, p *Packet, o *Options) {
	p.L4Offset = off
	hdr := 0
	switch p.Proto {
	case flow.ProtoTCP:
		if end < off+4 {
			p.Status |= StatusTruncated
			return
		}
		setPorts(frame[off:], p)
		if end < off+14 {
			p.Status |= StatusTruncated
			return
		}
		p.TCPFlags = frame[off+13]
		hdr = int(frame[off+12]>>4) * 4
		if hdr < 20 {
			p.Status |= StatusMalformed
			return
		}
	case flow.ProtoUDP, 136: // UDP, UDP-Lite
		if end < off+4 {
			p.Status |= StatusTruncated
			return
		}
		setPorts(frame[off:], p)
		hdr = 8
	case flow.ProtoSCTP:
		if end < off+4 {
			p.Status |= StatusTruncated
			return
		}
		setPorts(frame[off:], p)
		hdr = 12
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if end < off+2 {
			p.Status |= StatusTruncated
			return
		}
		p.HasPorts = true
		p.Tuple.SrcPort = uint16(frame[off])
		p.Tuple.DstPort = uint16(frame[off+1])
		hdr = 8
	}
	// Other protocols (ESP, GRE, IP-in-IP, no next header...): the
	// payload starts right at off.
	if end < off+hdr {
		p.Status |= StatusTruncated
		return
	}
	p.PayloadOffset = off + hdr
	p.PayloadLen = end - p.PayloadOffset
	if p.Proto == flow.ProtoUDP || tunnelProto(p.Proto) {
		maybeTunnel(frame[:end], p, o)
	}
}

func setPorts(b []byte, p *Packet) {
	p.HasPorts = true
	p.Tuple.SrcPort = binary.BigEndian.Uint16(b)
	p.Tuple.DstPort = binary.BigEndian.Uint16(b[2:])
}
