package inspect

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Summarizer writes one line per packet as Wireshark's Protocol and Info
// columns read for the common cases, e.g.
//
//	TCP 51234 → 443 [SYN] Seq=0 Win=64240 Len=0 MSS=1460 SACK_PERM WS=128
//	DNS Standard query 0xe039 A www.github.com
//	TLS Client Hello (SNI=example.com)
//	HTTP GET /index.html HTTP/1.1
//	ICMP Echo (ping) request id=0x881c, seq=0/0, ttl=64
//
// It remembers each TCP direction's initial sequence number and window
// scale, so that Seq and Ack are relative and Win scaled as Wireshark
// shows them: feed it a flow's packets in order. It never panics on
// malformed frames. A Summarizer is not safe for concurrent use.
type Summarizer struct {
	tcp map[[2]netip.AddrPort]*tcpSide // by (sender, receiver)
}

// tcpSide is what the summaries remember of one TCP sender.
type tcpSide struct {
	base    uint32 // initial sequence number
	baseSet bool
	wscale  int // window scale shift from its SYN, -1 when none
	synSeen bool
}

// NewSummarizer returns a Summarizer with nothing seen yet.
func NewSummarizer() *Summarizer {
	return &Summarizer{tcp: map[[2]netip.AddrPort]*tcpSide{}}
}

// decodePacket decodes a frame with gopacket, lazily and without
// copying.
func decodePacket(link uint16, frame []byte) gopacket.Packet {
	return gopacket.NewPacket(frame, layers.LinkType(link), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
}

// Summary returns the frame's one-line summary. link is its pcap link
// type.
func (s *Summarizer) Summary(link uint16, frame []byte) string {
	p := decodePacket(link, frame)
	var src, dst netip.Addr
	ttl := -1
	if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		ttl = int(ip.TTL)
	} else if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		src, _ = netip.AddrFromSlice(ip6.SrcIP)
		dst, _ = netip.AddrFromSlice(ip6.DstIP)
		ttl = int(ip6.HopLimit)
	}
	if d, ok := p.Layer(layers.LayerTypeDNS).(*layers.DNS); ok {
		return "DNS " + dnsSummary(d)
	}
	switch {
	case p.Layer(layers.LayerTypeTCP) != nil:
		t := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		line := s.tcpSummary(src, dst, t)
		if app := appSummary(t.Payload); app != "" {
			return app
		}
		return "TCP " + line
	case p.Layer(layers.LayerTypeUDP) != nil:
		u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return fmt.Sprintf("UDP %d → %d Len=%d", u.SrcPort, u.DstPort, len(u.Payload))
	case p.Layer(layers.LayerTypeICMPv4) != nil:
		return "ICMP " + icmpSummary(p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4), ttl)
	case p.Layer(layers.LayerTypeICMPv6) != nil:
		return "ICMPv6 " + icmp6Summary(p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6))
	case p.Layer(layers.LayerTypeARP) != nil:
		return "ARP " + arpSummary(p.Layer(layers.LayerTypeARP).(*layers.ARP))
	}
	return fallbackSummary(p)
}

// fallbackSummary names the innermost layer decoded.
func fallbackSummary(p gopacket.Packet) string {
	ls := p.Layers()
	for i := len(ls) - 1; i >= 0; i-- {
		if t := ls[i].LayerType(); t != gopacket.LayerTypePayload && t != gopacket.LayerTypeDecodeFailure {
			return fmt.Sprintf("%s %d bytes", t, len(p.Data()))
		}
	}
	return fmt.Sprintf("Frame %d bytes", len(p.Data()))
}

// tcpFlagNames are the flag names in Wireshark's order (lowest bit
// first).
var tcpFlagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// tcpSummary is the Info line of a TCP segment: ports, flags, relative
// Seq and Ack, the scaled window, the payload length and the options.
func (s *Summarizer) tcpSummary(src, dst netip.Addr, t *layers.TCP) string {
	from := netip.AddrPortFrom(src, uint16(t.SrcPort))
	to := netip.AddrPortFrom(dst, uint16(t.DstPort))
	me, peer := s.side(from, to), s.side(to, from)
	flags := tcpFlags(t)
	if !me.baseSet {
		me.base, me.baseSet = t.Seq, true
		if !t.SYN {
			me.base-- // as after a SYN: the first byte is 1
		}
	}
	if t.ACK && !peer.baseSet {
		peer.base, peer.baseSet = t.Ack-1, true
	}
	if t.SYN {
		me.synSeen, me.wscale = true, windowScale(t)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d → %d [%s] Seq=%d", t.SrcPort, t.DstPort, strings.Join(flags, ", "), t.Seq-me.base)
	if t.ACK {
		fmt.Fprintf(&b, " Ack=%d", t.Ack-peer.base)
	}
	win := uint32(t.Window)
	if !t.SYN && me.synSeen && peer.synSeen && me.wscale >= 0 && peer.wscale >= 0 {
		win <<= uint(me.wscale)
	}
	fmt.Fprintf(&b, " Win=%d Len=%d", win, len(t.Payload))
	b.WriteString(tcpOptions(t))
	return b.String()
}

// side returns the state of one TCP sender towards one receiver,
// created on first use.
func (s *Summarizer) side(from, to netip.AddrPort) *tcpSide {
	k := [2]netip.AddrPort{from, to}
	st := s.tcp[k]
	if st == nil {
		st = &tcpSide{wscale: -1}
		s.tcp[k] = st
	}
	return st
}

// tcpFlags lists the segment's flags by name.
func tcpFlags(t *layers.TCP) []string {
	bits := [...]bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR}
	var out []string
	for i, on := range bits {
		if on {
			out = append(out, tcpFlagNames[i])
		}
	}
	if len(out) == 0 {
		out = append(out, "<None>")
	}
	return out
}

// windowScale is the SYN's window scale shift, -1 without the option.
func windowScale(t *layers.TCP) int {
	for _, o := range t.Options {
		if o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1 {
			return int(min(o.OptionData[0], 14))
		}
	}
	return -1
}

// tcpOptions renders the options Wireshark's Info shows.
func tcpOptions(t *layers.TCP) string {
	var b strings.Builder
	for _, o := range t.Options {
		d := o.OptionData
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			if len(d) == 2 {
				fmt.Fprintf(&b, " MSS=%d", binary.BigEndian.Uint16(d))
			}
		case layers.TCPOptionKindWindowScale:
			if len(d) == 1 {
				fmt.Fprintf(&b, " WS=%d", 1<<min(d[0], 14))
			}
		case layers.TCPOptionKindSACKPermitted:
			b.WriteString(" SACK_PERM")
		case layers.TCPOptionKindTimestamps:
			if len(d) == 8 {
				fmt.Fprintf(&b, " TSval=%d TSecr=%d", binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:]))
			}
		}
	}
	return b.String()
}

// appSummary recognizes an HTTP request or status line or a TLS record
// at the start of a TCP payload; "" when it is neither.
func appSummary(payload []byte) string {
	if line, ok := httpLine(payload); ok {
		return "HTTP " + line
	}
	if tls := tlsSummary(payload); tls != "" {
		return "TLS " + tls
	}
	return ""
}

// httpMethods start an HTTP request line.
var httpMethods = []string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "TRACE ", "PATCH ",
	"PROPFIND ", "SEARCH "}

// httpLine returns the first line of an HTTP request or response.
func httpLine(b []byte) (string, bool) {
	end := len(b)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			end = i
			break
		}
	}
	if end == len(b) || end == 0 {
		return "", false
	}
	line := string(b[:min(end, 256)])
	if strings.HasPrefix(line, "HTTP/1.") {
		return line, true
	}
	for _, m := range httpMethods {
		if strings.HasPrefix(line, m) && strings.Contains(line, " HTTP/") {
			return line, true
		}
	}
	return "", false
}

// tlsSummary names the first TLS record of a payload: the handshake
// message (a Client Hello with its SNI), or the record type.
func tlsSummary(b []byte) string {
	if len(b) < 5 || b[1] != 3 || b[2] > 4 {
		return ""
	}
	rec := b[5:min(len(b), 5+int(binary.BigEndian.Uint16(b[3:])))]
	switch b[0] {
	case 20:
		return "Change Cipher Spec"
	case 21:
		return "Alert"
	case 23:
		return "Application Data"
	case 22:
		return handshakeSummary(rec)
	}
	return ""
}

// handshakeNames are the TLS handshake message names by type.
var handshakeNames = map[byte]string{1: "Client Hello", 2: "Server Hello", 4: "New Session Ticket", 8: "Encrypted Extensions",
	11: "Certificate", 12: "Server Key Exchange", 13: "Certificate Request", 14: "Server Hello Done",
	15: "Certificate Verify", 16: "Client Key Exchange", 20: "Finished"}

// handshakeSummary names a handshake message; a Client Hello's SNI is
// added when present.
func handshakeSummary(rec []byte) string {
	if len(rec) < 4 {
		return "Handshake"
	}
	name, ok := handshakeNames[rec[0]]
	if !ok {
		return "Encrypted Handshake Message"
	}
	if rec[0] == 1 {
		if sni := clientHelloSNI(rec[4:]); sni != "" {
			name += " (SNI=" + sni + ")"
		}
	}
	return name
}

// clientHelloSNI returns the server_name extension's host name of a
// Client Hello body, "" when absent or malformed.
func clientHelloSNI(b []byte) string {
	r := reader{b: b}
	r.skip(2 + 32)      // version, random
	r.skip(int(r.u8())) // session id
	r.skip(int(r.u16()))
	r.skip(int(r.u8())) // compression methods
	ext := reader{b: r.bytes(int(r.u16()))}
	for !ext.bad && len(ext.b) >= 4 {
		typ, body := ext.u16(), ext.bytes(int(ext.u16()))
		if typ != 0 {
			continue
		}
		sn := reader{b: body}
		list := reader{b: sn.bytes(int(sn.u16()))}
		for !list.bad && len(list.b) >= 3 {
			kind, name := list.u8(), list.bytes(int(list.u16()))
			if kind == 0 && !list.bad {
				return printable(name)
			}
		}
	}
	return ""
}

// printable keeps a name's printable ASCII, bounded, for a summary line.
func printable(b []byte) string {
	var out strings.Builder
	for _, c := range b[:min(len(b), 255)] {
		if c >= 0x21 && c < 0x7f {
			out.WriteByte(c)
		} else {
			out.WriteByte('?')
		}
	}
	return out.String()
}

// reader reads big-endian fields; past the end it sets bad and returns
// zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.bad, r.b = true, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) skip(n int) { r.bytes(n) }

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// dnsRcodes name the response codes Wireshark names in a summary.
var dnsRcodes = map[layers.DNSResponseCode]string{1: "Format error", 2: "Server failure", 3: "No such name",
	4: "Not implemented", 5: "Refused"}

// dnsSummary is Wireshark's DNS Info: query or response, the ID, the
// rcode when not zero, the questions, then every record's type and data.
func dnsSummary(d *layers.DNS) string {
	var b strings.Builder
	b.WriteString("Standard query")
	if d.QR {
		b.WriteString(" response")
	}
	fmt.Fprintf(&b, " 0x%04x", d.ID)
	if rc, ok := dnsRcodes[d.ResponseCode]; ok && d.QR {
		b.WriteString(" " + rc)
	}
	for _, q := range d.Questions {
		fmt.Fprintf(&b, " %s %s", dnsType(q.Type), printable(q.Name))
	}
	for _, group := range [][]layers.DNSResourceRecord{d.Answers, d.Authorities, d.Additionals} {
		for i := range group {
			if rr := dnsRecord(&group[i]); rr != "" {
				b.WriteString(" " + rr)
			}
		}
	}
	return b.String()
}

// dnsRecord renders one resource record as "TYPE data".
func dnsRecord(rr *layers.DNSResourceRecord) string {
	switch rr.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		return rr.Type.String() + " " + rr.IP.String()
	case layers.DNSTypeCNAME:
		return "CNAME " + printable(rr.CNAME)
	case layers.DNSTypeNS:
		return "NS " + printable(rr.NS)
	case layers.DNSTypePTR:
		return "PTR " + printable(rr.PTR)
	case layers.DNSTypeMX:
		return "MX " + printable(rr.MX.Name)
	case layers.DNSTypeSOA:
		return "SOA " + printable(rr.SOA.MName)
	case layers.DNSTypeOPT:
		return "OPT"
	}
	return dnsType(rr.Type)
}

// dnsTypeNames name the record types gopacket leaves unnamed.
var dnsTypeNames = map[layers.DNSType]string{43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 64: "SVCB",
	65: "HTTPS", 250: "TSIG", 251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA"}

// dnsType names a record type as Wireshark does.
func dnsType(t layers.DNSType) string {
	if n, ok := dnsTypeNames[t]; ok {
		return n
	}
	if n := t.String(); n != "Unknown" {
		return n
	}
	return "Unknown (" + strconv.Itoa(int(t)) + ")"
}

// icmpTypes name ICMP messages; unreachable codes are named apart.
var icmpTypes = map[uint8]string{0: "Echo (ping) reply", 3: "Destination unreachable", 4: "Source quench",
	5: "Redirect", 8: "Echo (ping) request", 11: "Time-to-live exceeded", 12: "Parameter problem",
	13: "Timestamp request", 14: "Timestamp reply"}

var unreachableCodes = map[uint8]string{0: "Network unreachable", 1: "Host unreachable", 2: "Protocol unreachable",
	3: "Port unreachable", 4: "Fragmentation needed", 9: "Network administratively prohibited",
	10: "Host administratively prohibited", 13: "Communication administratively filtered"}

// icmpSummary is Wireshark's ICMP Info: the message, the echo id and
// sequence, the TTL.
func icmpSummary(m *layers.ICMPv4, ttl int) string {
	typ, code := m.TypeCode.Type(), m.TypeCode.Code()
	name, ok := icmpTypes[typ]
	if !ok {
		name = "Type " + strconv.Itoa(int(typ))
	}
	switch typ {
	case 0, 8:
		line := fmt.Sprintf("%s id=0x%04x, seq=%d/%d", name, m.Id, m.Seq, m.Seq<<8|m.Seq>>8)
		if ttl >= 0 {
			line += fmt.Sprintf(", ttl=%d", ttl)
		}
		return line
	case 3:
		if c, ok := unreachableCodes[code]; ok {
			return name + " (" + c + ")"
		}
	}
	if code != 0 {
		return fmt.Sprintf("%s (code %d)", name, code)
	}
	return name
}

// icmp6Types name ICMPv6 messages.
var icmp6Types = map[uint8]string{1: "Destination Unreachable", 2: "Packet Too Big", 3: "Time Exceeded",
	4: "Parameter Problem", 128: "Echo (ping) request", 129: "Echo (ping) reply", 133: "Router Solicitation",
	134: "Router Advertisement", 135: "Neighbor Solicitation", 136: "Neighbor Advertisement", 137: "Redirect",
	143: "Multicast Listener Report Message v2"}

// icmp6Summary names an ICMPv6 message.
func icmp6Summary(m *layers.ICMPv6) string {
	typ := m.TypeCode.Type()
	if name, ok := icmp6Types[typ]; ok {
		return name
	}
	return "Type " + strconv.Itoa(int(typ))
}

// arpSummary is Wireshark's ARP Info.
func arpSummary(a *layers.ARP) string {
	ip := func(b []byte) string {
		if ad, ok := netip.AddrFromSlice(b); ok {
			return ad.String()
		}
		return "?"
	}
	if a.Operation == layers.ARPReply {
		return fmt.Sprintf("%s is at %s", ip(a.SourceProtAddress), net.HardwareAddr(a.SourceHwAddress))
	}
	return fmt.Sprintf("Who has %s? Tell %s", ip(a.DstProtAddress), ip(a.SourceProtAddress))
}
