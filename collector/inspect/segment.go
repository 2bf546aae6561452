package inspect

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
)

// IP protocol numbers of the transports Follow Stream reassembles.
const (
	protoTCP = 6
	protoUDP = 17
)

// TCP flag bits.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagURG = 0x20
	flagECE = 0x40
	flagCWR = 0x80
)

// Segment is the transport view of one packet: its endpoints and, for
// TCP, sequence numbers and flags. Payload aliases the frame.
type Segment struct {
	Src, Dst netip.AddrPort
	Proto    uint8
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	// SegLen is the payload length the IP header announces (what the
	// sequence space advances by); Payload holds the bytes captured of
	// it (fewer when the snap length cut the frame).
	SegLen  uint32
	Payload []byte
}

// ParseSegment decodes a frame of the given pcap link type (tunnels
// stripped as the sensor strips them), origLen bytes long on the wire,
// into its TCP or UDP segment; ok is false for anything else (other
// protocols, fragments, truncated headers).
func ParseSegment(link uint16, frame []byte, origLen int) (seg Segment, ok bool) {
	var p decode.Packet
	decode.Decode(decode.LinkType(link), frame, &p)
	if !p.HasTuple || !p.HasPorts || p.IsFragment || (p.Proto != protoTCP && p.Proto != protoUDP) {
		return seg, false
	}
	if p.PayloadOffset == 0 || p.PayloadOffset+p.PayloadLen > len(frame) {
		return seg, false
	}
	t := p.Tuple
	seg.Src = netip.AddrPortFrom(t.Src.Netip(t.Family), t.SrcPort)
	seg.Dst = netip.AddrPortFrom(t.Dst.Netip(t.Family), t.DstPort)
	seg.Proto = p.Proto
	seg.Payload = frame[p.PayloadOffset : p.PayloadOffset+p.PayloadLen]
	seg.SegLen = uint32(segLen(frame, origLen, &p))
	if p.Proto == protoTCP {
		h := frame[p.L4Offset:]
		if len(h) < 20 {
			return seg, false
		}
		seg.Seq = binary.BigEndian.Uint32(h[4:])
		seg.Ack = binary.BigEndian.Uint32(h[8:])
		seg.Flags = h[13]
		seg.Window = binary.BigEndian.Uint16(h[14:])
	}
	return seg, true
}

// segLen is the transport payload length as Wireshark reckons it: what
// the IP header announces, cut to the frame's length on the wire, and
// never less than what was captured (a zero IPv4 total length, as
// segmentation offload captures show, announces nothing).
func segLen(frame []byte, origLen int, p *decode.Packet) int {
	ip := frame[p.L3Offset:]
	var end int
	switch p.Tuple.Family {
	case flow.FamilyIPv4:
		end = p.L3Offset + int(binary.BigEndian.Uint16(ip[2:]))
	default:
		end = p.L3Offset + 40 + int(binary.BigEndian.Uint16(ip[4:]))
	}
	end = min(end, origLen)
	if n := end - p.PayloadOffset; n > p.PayloadLen {
		return n
	}
	return p.PayloadLen
}
