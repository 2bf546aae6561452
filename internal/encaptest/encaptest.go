// Package encaptest builds tunnel captures for tests and benchmarks: it
// wraps every packet of an Ethernet capture in a tunnel (IP-in-IP in the
// four family combinations, GRE with checksum, key and sequence number,
// GRE transparent Ethernet bridging, ERSPAN types I, II and III, VXLAN,
// Geneve with an option, GTP-U with an extension header, Teredo with an
// origin indication, and VXLAN inside GRE), so that the decoder's inner
// flows can be compared with the flows of the original capture.
//
// The tunnel endpoints are fixed documentation addresses (OuterSrc4,
// OuterDst4, OuterSrc6, OuterDst6), so the tunnel's own traffic is easy
// to tell from the inner flows. Frames a tunnel cannot carry are written
// unchanged, so the capture keeps every packet: non-IP frames and tagged
// or labelled frames (which would lose their tags) for the tunnels that
// carry IP, IPv4 for Teredo. The tunnels that carry IP drop the original
// Ethernet header and padding; the others carry the whole frame.
// bench/encap is the command-line front end.
package encaptest

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Kind is a tunnel encapsulation.
type Kind string

// The encapsulations Wrap builds.
const (
	IPIP4     Kind = "ipip4"      // IPv4 or IPv6 inside outer IPv4 (4in4, 6in4)
	IPIP6     Kind = "ipip6"      // IPv4 or IPv6 inside outer IPv6 (4in6, 6in6)
	GRE       Kind = "gre"        // GRE with checksum, key and sequence number, carrying IP
	GRETEB    Kind = "gre-teb"    // GRE transparent Ethernet bridging (0x6558), key set
	ERSPAN1   Kind = "erspan1"    // GRE 0x88be without sequence number, Ethernet
	ERSPAN2   Kind = "erspan2"    // GRE 0x88be with sequence number and an ERSPAN II header
	ERSPAN3   Kind = "erspan3"    // GRE 0x22eb with an ERSPAN III header and its optional subheader
	VXLAN     Kind = "vxlan"      // VXLAN over UDP 4789, outer IPv4
	VXLAN6    Kind = "vxlan6"     // VXLAN over UDP 4789, outer IPv6
	Geneve    Kind = "geneve"     // Geneve over UDP 6081 with one 8-byte option, Ethernet
	GTPU      Kind = "gtpu"       // GTP-U G-PDU over UDP 2152 with a PDU session container extension
	Teredo    Kind = "teredo"     // IPv6 over UDP 3544 with an origin indication
	VXLANInGR Kind = "vxlan-gre"  // VXLAN inside GRE: two levels
	GTPUInV6  Kind = "gtpu-ipip6" // GTP-U inside 4in6/6in6: two levels
)

// Kinds lists every encapsulation.
var Kinds = []Kind{IPIP4, IPIP6, GRE, GRETEB, ERSPAN1, ERSPAN2, ERSPAN3, VXLAN, VXLAN6, Geneve, GTPU, Teredo, VXLANInGR, GTPUInV6}

// Tunnel endpoints.
var (
	OuterSrc4 = netip.MustParseAddr("192.0.2.1")
	OuterDst4 = netip.MustParseAddr("192.0.2.2")
	OuterSrc6 = netip.MustParseAddr("2001:db8:ffff::1")
	OuterDst6 = netip.MustParseAddr("2001:db8:ffff::2")
)

// IDs carried by the tunnel headers.
const (
	VNI       = 0x123456
	GREKey    = 0xdeadbeef
	SessionID = 0x2a5
	TEID      = 0x01020304
)

// Levels returns how many tunnel levels k wraps a frame in.
func Levels(k Kind) int {
	if k == VXLANInGR || k == GTPUInV6 {
		return 2
	}
	return 1
}

// Wrap returns the Ethernet frame eth wrapped in k, and whether it was
// wrapped (false: eth is returned unchanged). seq numbers the packet (GRE
// and ERSPAN sequence numbers, outer IP IDs).
func Wrap(k Kind, eth []byte, seq uint32) ([]byte, bool) {
	if len(eth) < 14 {
		return eth, false
	}
	ip, family, ok := innerIP(eth)
	mac := eth[:12]
	switch k {
	case IPIP4, IPIP6:
		if !ok {
			return eth, false
		}
		proto := uint8(4)
		if family == 6 {
			proto = 41
		}
		return ipFrame(mac, k == IPIP6, proto, ip, seq), true
	case GRE:
		if !ok {
			return eth, false
		}
		return ipFrame(mac, false, 47, greHeader(etherType(family), true, true, seq, ip), seq), true
	case GRETEB:
		return ipFrame(mac, false, 47, greHeader(0x6558, true, false, seq, eth), seq), true
	case ERSPAN1:
		return ipFrame(mac, false, 47, greHeader(0x88be, false, false, seq, eth), seq), true
	case ERSPAN2:
		return ipFrame(mac, false, 47, greHeader(0x88be, false, true, seq, cat(erspan2Header(), eth)), seq), true
	case ERSPAN3:
		return ipFrame(mac, false, 47, greHeader(0x22eb, false, true, seq, cat(erspan3Header(seq), eth)), seq), true
	case VXLAN, VXLAN6:
		return ipFrame(mac, k == VXLAN6, 17, udp(49152, 4789, cat(vxlanHeader(), eth)), seq), true
	case Geneve:
		return ipFrame(mac, false, 17, udp(49153, 6081, cat(geneveHeader(), eth)), seq), true
	case GTPU:
		if !ok {
			return eth, false
		}
		return ipFrame(mac, false, 17, udp(2152, 2152, gtpuPayload(ip, seq)), seq), true
	case Teredo:
		if !ok || family != 6 {
			return eth, false
		}
		return ipFrame(mac, false, 17, udp(3544, 49154, cat(teredoOrigin(), ip)), seq), true
	case VXLANInGR:
		inner := ipPacket(false, 17, udp(49152, 4789, cat(vxlanHeader(), eth)), seq)
		return ipFrame(mac, false, 47, greHeader(0x0800, false, true, seq, inner), seq), true
	case GTPUInV6:
		if !ok {
			return eth, false
		}
		inner := ipPacket(false, 17, udp(2152, 2152, gtpuPayload(ip, seq)), seq)
		return ipFrame(mac, true, 4, inner, seq), true
	}
	return eth, false
}

// innerIP returns the IP packet of an untagged Ethernet frame (without
// Ethernet padding) and its family.
func innerIP(eth []byte) ([]byte, uint8, bool) {
	var fam uint8
	switch binary.BigEndian.Uint16(eth[12:]) {
	case EtherTypeIPv4:
		fam = 4
	case EtherTypeIPv6:
		fam = 6
	default:
		return nil, 0, false
	}
	ip := eth[14:]
	var n int
	if fam == 4 && len(ip) >= 20 && ip[0]>>4 == 4 {
		n = int(binary.BigEndian.Uint16(ip[2:]))
	} else if fam == 6 && len(ip) >= 40 && ip[0]>>4 == 6 {
		if pl := int(binary.BigEndian.Uint16(ip[4:])); pl != 0 {
			n = 40 + pl
		}
	} else {
		return nil, 0, false
	}
	if n > 0 && n < len(ip) {
		ip = ip[:n]
	}
	return ip, fam, true
}

// Ethertypes of the IP versions.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeIPv6 = 0x86dd
)

func etherType(family uint8) uint16 {
	if family == 6 {
		return EtherTypeIPv6
	}
	return EtherTypeIPv4
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ipFrame is an Ethernet frame with the given MAC addresses around an
// outer IP packet.
func ipFrame(mac []byte, v6 bool, proto uint8, payload []byte, seq uint32) []byte {
	et := uint16(EtherTypeIPv4)
	if v6 {
		et = EtherTypeIPv6
	}
	return cat(mac, binary.BigEndian.AppendUint16(nil, et), ipPacket(v6, proto, payload, seq))
}

// ipPacket is an outer IPv4 or IPv6 header from the tunnel's source to
// its destination, then payload.
func ipPacket(v6 bool, proto uint8, payload []byte, seq uint32) []byte {
	if v6 {
		h := make([]byte, 40)
		h[0] = 0x60
		binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
		h[6], h[7] = proto, 64
		s, d := OuterSrc6.As16(), OuterDst6.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		return cat(h, payload)
	}
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], uint16(seq))
	h[8], h[9] = 64, proto
	s, d := OuterSrc4.As4(), OuterDst4.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return cat(h, payload)
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udp is a UDP header (checksum 0: not computed) before payload.
func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return cat(h, payload)
}

// greHeader is a GRE header of protocol proto, with a key when key and a
// sequence number when withSeq (and a checksum with the key, to exercise
// every optional field), before payload.
func greHeader(proto uint16, key, withSeq bool, seq uint32, payload []byte) []byte {
	var flags uint16
	if key {
		flags |= 0x8000 | 0x2000
	}
	if withSeq {
		flags |= 0x1000
	}
	h := binary.BigEndian.AppendUint16(nil, flags)
	h = binary.BigEndian.AppendUint16(h, proto)
	if key {
		h = append(h, 0, 0, 0, 0) // checksum, reserved: filled below
		h = binary.BigEndian.AppendUint32(h, GREKey)
	}
	if withSeq {
		h = binary.BigEndian.AppendUint32(h, seq)
	}
	out := cat(h, payload)
	if key {
		binary.BigEndian.PutUint16(out[4:], checksum(out))
	}
	return out
}

// erspan2Header is an ERSPAN type II header: version 1, VLAN 0, session
// SessionID, index 0.
func erspan2Header() []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h, 0x1000)
	binary.BigEndian.PutUint16(h[2:], SessionID)
	return h
}

// erspan3Header is an ERSPAN type III header: version 2, session
// SessionID, a timestamp, frame type 0 (Ethernet), the O bit set and the
// 8-byte platform-specific subheader it announces.
func erspan3Header(seq uint32) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, 0x2000)
	binary.BigEndian.PutUint16(h[2:], SessionID)
	binary.BigEndian.PutUint32(h[4:], seq)
	h[11] = 1 // O: platform-specific subheader follows
	h[12] = 3 << 2
	return h
}

// vxlanHeader is a VXLAN header with the I flag and VNI.
func vxlanHeader() []byte {
	h := make([]byte, 8)
	h[0] = 0x08
	binary.BigEndian.PutUint32(h[4:], VNI<<8)
	return h
}

// geneveHeader is a Geneve header carrying Ethernet with VNI and one
// 8-byte option (class 0x0102, type 0x80, 4 bytes of data).
func geneveHeader() []byte {
	h := make([]byte, 16)
	h[0] = 2 // option length: 2 four-byte words
	binary.BigEndian.PutUint16(h[2:], 0x6558)
	binary.BigEndian.PutUint32(h[4:], VNI<<8)
	binary.BigEndian.PutUint16(h[8:], 0x0102)
	h[10], h[11] = 0x80, 1
	copy(h[12:], []byte{1, 2, 3, 4})
	return h
}

// gtpuPayload is a GTP-U G-PDU header (version 1, E flag) with a PDU
// session container extension header, then ip.
func gtpuPayload(ip []byte, seq uint32) []byte {
	ext := []byte{1, 0x10, 0x09, 0x00} // length 1 (4 bytes): UL PDU session information, QFI 9, next type 0
	h := make([]byte, 12)
	h[0] = 0x34 // version 1, PT, E
	h[1] = 0xff
	binary.BigEndian.PutUint16(h[2:], uint16(4+len(ext)+len(ip)))
	binary.BigEndian.PutUint32(h[4:], TEID)
	binary.BigEndian.PutUint16(h[8:], uint16(seq))
	h[11] = 0x85 // next extension: PDU session container
	return cat(h, ext, ip)
}

// teredoOrigin is a Teredo origin indication (port and address
// obfuscated by XOR with all ones, as RFC 4380 says).
func teredoOrigin() []byte {
	return []byte{0, 0, 0x3f ^ 0xff, 0xd2 ^ 0xff, 203 ^ 0xff, 0 ^ 0xff, 113 ^ 0xff, 7 ^ 0xff}
}

// File reads the Ethernet pcap at in (gzip-compressed when it ends in
// .gz) and writes to out the same packets, same times, each wrapped in k.
// It returns how many packets were wrapped and how many copied unchanged.
func File(k Kind, in, out string) (wrapped, copied int, err error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(in, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", in, err)
		}
		r = zr
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", in, err)
	}
	if pr.LinkType() != layers.LinkTypeEthernet {
		return 0, 0, fmt.Errorf("%s: link type %v, not Ethernet", in, pr.LinkType())
	}
	o, err := os.Create(out)
	if err != nil {
		return 0, 0, err
	}
	w := pcapgo.NewWriter(o)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		o.Close()
		return 0, 0, err
	}
	for seq := uint32(1); ; seq++ {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			o.Close()
			return wrapped, copied, fmt.Errorf("%s: %w", in, err)
		}
		fr, ok := Wrap(k, data, seq)
		if ok {
			wrapped++
		} else {
			copied++
		}
		wci := gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(fr), Length: ci.Length + len(fr) - len(data)}
		if err := w.WritePacket(wci, fr); err != nil {
			o.Close()
			return wrapped, copied, err
		}
	}
	return wrapped, copied, o.Close()
}
