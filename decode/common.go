package decode

import (
	"encoding/binary"

	"github.com/tapir-sensor/tapir/flow"
)

// Decoder decodes frame after frame into its own Packet, for a caller
// that handles one frame at a time (a sensor worker). Its Decode gives
// exactly the Packet that Options.Decode gives, but the common frame —
// Ethernet with at most two VLAN tags, then IPv4 or IPv6 that is not a
// fragment and has no IPv6 extension header, then TCP, or UDP that is
// not a tunnel — is decoded by one straight function that writes only
// the fields such a frame sets: every other field of Packet is zero for
// it, and stays zero from one common frame to the next.
//
// The zero Decoder decodes with the default options. A Decoder is not
// safe for concurrent use.
type Decoder struct {
	// Packet is the last frame's decoding.
	Packet Packet
	opts   *Options
	// dirty: Packet may hold a field the common path does not write
	// (the last frame went through Options.Decode).
	dirty bool
}

// SetOptions makes d decode with options o (nil: the defaults). o must
// not change while d uses it.
func (d *Decoder) SetOptions(o *Options) {
	d.opts = o
}

// Decode decodes frame, captured with link type link, into d.Packet and
// reports whether the frame was a common one (see Decoder): then
// Packet.Status is 0, the frame is not a fragment, carries no MPLS label
// and no tunnel, HasTuple and HasPorts are set, and Counters.ObserveCommon
// counts it as Observe would. A frame found not to be common on the way
// (d.Packet then written in part) is decoded whole by Options.Decode.
func (d *Decoder) Decode(link LinkType, frame []byte) (common bool) {
	if link != LinkEthernet || len(frame) < 14 {
		return d.decodeAll(link, frame)
	}
	if len(frame) >= plainTCPLen && d.plainTCP((*[plainTCPLen]byte)(frame), len(frame)) {
		return true
	}
	be := binary.BigEndian
	et := be.Uint16(frame[12:])
	off := 14
	var vlan, inner uint16
	var tags uint8
	for et != EtherTypeIPv4 && et != EtherTypeIPv6 {
		if et != EtherTypeVLAN && et != EtherTypeQinQ && et != EtherTypeQinQOld || tags == 2 || len(frame) < off+4 {
			return d.decodeAll(link, frame)
		}
		id := be.Uint16(frame[off:]) & 0x0fff
		if tags == 0 {
			vlan = id
		} else {
			inner = id
		}
		tags++
		et = be.Uint16(frame[off+2:])
		off += 4
	}
	p := &d.Packet
	if d.dirty {
		*p = Packet{}
		d.dirty = false
	}
	var end, l4 int
	var proto uint8
	if et == EtherTypeIPv4 {
		if len(frame) < off+20 {
			return d.decodeAll(link, frame)
		}
		h := frame[off : off+20]
		v := h[0]
		ihl := int(v&0x0f) * 4
		if v>>4 != 4 || ihl < 20 || be.Uint16(h[6:])&0x3fff != 0 || len(frame) < off+ihl {
			return d.decodeAll(link, frame) // malformed, a fragment (MF or an offset) or cut
		}
		end = len(frame)
		if total := int(be.Uint16(h[2:])); total != 0 {
			if total < ihl {
				return d.decodeAll(link, frame)
			}
			end = min(end, off+total)
		}
		proto = h[9]
		setIPv4(&p.Tuple, (*[8]byte)(h[12:20]))
		l4 = off + ihl
	} else {
		if len(frame) < off+40 {
			return d.decodeAll(link, frame)
		}
		h := frame[off : off+40]
		if h[0]>>4 != 6 {
			return d.decodeAll(link, frame)
		}
		end = len(frame)
		if plen := int(be.Uint16(h[4:])); plen != 0 {
			end = min(end, off+40+plen)
		}
		proto = h[6]
		copy(p.Tuple.Src[:], h[8:24])
		copy(p.Tuple.Dst[:], h[24:40])
		p.Tuple.Family = flow.FamilyIPv6
		l4 = off + 40
	}
	var flags uint8
	hdr := 8
	switch proto {
	case flow.ProtoTCP:
		if end < l4+14 {
			return d.decodeAll(link, frame)
		}
		flags = frame[l4+13]
		if hdr = int(frame[l4+12]>>4) * 4; hdr < 20 {
			return d.decodeAll(link, frame)
		}
	case flow.ProtoUDP:
	default:
		return d.decodeAll(link, frame)
	}
	if end < l4+hdr {
		return d.decodeAll(link, frame)
	}
	sport, dport := be.Uint16(frame[l4:]), be.Uint16(frame[l4+2:])
	if proto == flow.ProtoUDP && d.udpMaybeTunnel(sport, dport) {
		return d.decodeAll(link, frame)
	}
	p.Tuple.SrcPort, p.Tuple.DstPort = sport, dport
	p.Tuple.Proto = proto
	p.Tuple.VLAN, p.Tuple.InnerVLAN = vlan, inner
	p.HasTuple, p.HasPorts = true, true
	p.EtherType = et
	p.Proto = proto
	p.TCPFlags = flags
	p.VLANTags = tags
	p.L3Offset, p.L4Offset = off, l4
	p.PayloadOffset, p.PayloadLen = l4+hdr, end-(l4+hdr)
	return true
}

// plainTCPLen is the shortest untagged Ethernet frame with IPv4 and TCP
// headers.
const plainTCPLen = 14 + 20 + 20

// plainTCP decodes the most common frame of all — untagged Ethernet,
// IPv4 without options and not a fragment, TCP — into d.Packet at fixed
// offsets (h holds the frame's first bytes, n is its length) and reports
// whether the frame was one; when it was not, d.Packet is untouched and
// Decode goes on with the general common path.
func (d *Decoder) plainTCP(h *[plainTCPLen]byte, n int) bool {
	be := binary.BigEndian
	if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 || h[23] != flow.ProtoTCP || be.Uint16(h[20:])&0x3fff != 0 {
		return false
	}
	end := n
	if total := int(be.Uint16(h[16:])); total != 0 {
		if total < 20 {
			return false
		}
		end = min(end, 14+total)
	}
	hdr := int(h[46]>>4) * 4
	if hdr < 20 || end < 34+hdr {
		return false
	}
	p := &d.Packet
	if d.dirty {
		*p = Packet{}
		d.dirty = false
	}
	setIPv4(&p.Tuple, (*[8]byte)(h[26:34]))
	p.Tuple.SrcPort, p.Tuple.DstPort = be.Uint16(h[34:]), be.Uint16(h[36:])
	p.Tuple.Proto = flow.ProtoTCP
	p.Tuple.VLAN, p.Tuple.InnerVLAN = 0, 0
	p.HasTuple, p.HasPorts = true, true
	p.EtherType = EtherTypeIPv4
	p.Proto = flow.ProtoTCP
	p.TCPFlags = h[47]
	p.VLANTags = 0
	p.L3Offset, p.L4Offset = 14, 34
	p.PayloadOffset, p.PayloadLen = 34+hdr, end-(34+hdr)
	return true
}

// setIPv4 sets t's addresses to the IPv4-mapped forms (::ffff:a.b.c.d)
// of an IPv4 header's source and destination (addrs: its bytes 12-19),
// with two 8-byte stores each, and its family to IPv4.
func setIPv4(t *flow.Tuple, addrs *[8]byte) {
	le := binary.LittleEndian
	le.PutUint64(t.Src[:8], 0)
	le.PutUint64(t.Src[8:], 0xffff<<16|uint64(le.Uint32(addrs[0:]))<<32)
	le.PutUint64(t.Dst[:8], 0)
	le.PutUint64(t.Dst[8:], 0xffff<<16|uint64(le.Uint32(addrs[4:]))<<32)
	t.Family = flow.FamilyIPv4
}

// decodeAll decodes frame with Options.Decode and returns false.
func (d *Decoder) decodeAll(link LinkType, frame []byte) bool {
	o := d.opts
	if o == nil {
		o = &defaultOptions
	}
	o.Decode(link, frame, &d.Packet)
	d.dirty = true
	return false
}

// udpMaybeTunnel reports whether Options.Decode would look for a tunnel
// (or the mirror encapsulation) in an outermost UDP datagram between
// ports sport and dport (maybeTunnel).
func (d *Decoder) udpMaybeTunnel(sport, dport uint16) bool {
	o := d.opts
	if o == nil {
		o = &defaultOptions
	}
	if o.Mirror.Type == flow.TunnelNone && o.depth() == 0 {
		return false
	}
	return o.Mirror.udpType(sport, dport) != flow.TunnelNone || o.udpTunnel(sport, dport) != flow.TunnelNone
}

// ObserveCommon is Observe for a packet that Decoder.Decode reported
// common: it counts the same, skipping the tests such a packet cannot
// pass.
func (c *Counters) ObserveCommon(p *Packet, wireLen int) {
	c.Packets++
	c.Bytes += uint64(wireLen)
	b := EtherIPv6
	if p.EtherType == EtherTypeIPv4 {
		b = EtherIPv4
	}
	c.EtherTypes[b]++
	c.IPProto[p.Proto]++
	if p.VLANTags != 0 {
		c.VLANTagged++
	}
}
