package appmeta

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapir-sensor/tapir/flow"
)

// Parse errors. They are counted, never logged per packet.
var (
	ErrShort     = errors.New("appmeta: message too short")
	ErrMalformed = errors.New("appmeta: malformed message")
	ErrNotHello  = errors.New("appmeta: not a hello")
)

// DNS resource record types that carry an address or a name.
const (
	dnsTypeA     = 1
	dnsTypeNS    = 2
	dnsTypeCNAME = 5
	dnsTypePTR   = 12
	dnsTypeAAAA  = 28
)

// maxNameHops bounds the compression pointers followed in one name.
const maxNameHops = 32

// ParseDNS parses one DNS message (without the TCP length prefix) into m.
// A query fills ID, QueryName and QueryType (when not set yet); a response
// fills them too when no query was seen, then HasResponse, ResponseCode
// and up to maxAnswers answer records. It reports whether msg was a
// response. It never panics on malformed input.
func ParseDNS(msg []byte, m *flow.DNSMeta, maxAnswers int) (response bool, err error) {
	if len(msg) < 12 {
		return false, ErrShort
	}
	id := binary.BigEndian.Uint16(msg[0:])
	flags := binary.BigEndian.Uint16(msg[2:])
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	response = flags&0x8000 != 0
	if flags>>11&0xf > 6 { // opcode: QUERY..DSO; others are not DNS
		return response, ErrMalformed
	}
	off := 12
	var qname string
	var qtype uint16
	for i := 0; i < qd; i++ {
		name, n, err := readName(msg, off)
		if err != nil {
			return response, err
		}
		if n+4 > len(msg) {
			return response, ErrShort
		}
		if i == 0 {
			qname = name
			qtype = binary.BigEndian.Uint16(msg[n:])
		}
		off = n + 4
	}
	if m.QueryName == "" && m.QueryType == 0 && qd > 0 {
		m.ID, m.QueryName, m.QueryType = id, qname, qtype
	}
	if !response {
		return false, nil
	}
	m.HasResponse = true
	m.ResponseCode = uint8(flags & 0xf)
	if m.QueryType == 0 {
		m.ID = id
	}
	for i := 0; i < an; i++ {
		name, n, err := readName(msg, off)
		if err != nil {
			return true, err
		}
		if n+10 > len(msg) {
			return true, ErrShort
		}
		typ := binary.BigEndian.Uint16(msg[n:])
		ttl := binary.BigEndian.Uint32(msg[n+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[n+8:]))
		rd := n + 10
		if rd+rdlen > len(msg) {
			return true, ErrShort
		}
		off = rd + rdlen
		if len(m.Answers) >= maxAnswers {
			continue
		}
		a := flow.DNSAnswer{Name: name, Type: typ, TTL: ttl}
		switch typ {
		case dnsTypeA:
			if rdlen == 4 {
				a.Data = netip.AddrFrom4([4]byte(msg[rd : rd+4])).String()
			}
		case dnsTypeAAAA:
			if rdlen == 16 {
				a.Data = netip.AddrFrom16([16]byte(msg[rd : rd+16])).String()
			}
		case dnsTypeCNAME, dnsTypePTR, dnsTypeNS:
			target, _, err := readName(msg, rd)
			if err != nil {
				return true, err
			}
			a.Data = target
		}
		m.Answers = append(m.Answers, a)
	}
	return true, nil
}

// readName decodes the (possibly compressed) name at off. It returns the
// name in dotted form without the trailing dot ("" for the root) and the
// offset just past the name in place. Compression pointers must point
// backwards and are followed at most maxNameHops times, so a pointer loop
// is an error rather than a hang.
func readName(msg []byte, off int) (string, int, error) {
	var buf [255]byte
	n := 0
	end := -1
	hops := 0
	limit := off // pointers must point strictly before the label that holds them
	for {
		if off >= len(msg) {
			return "", 0, ErrShort
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				if end < 0 {
					end = off + 1
				}
				return string(buf[:n]), end, nil
			}
			if off+1+l > len(msg) {
				return "", 0, ErrShort
			}
			if n > 0 {
				if n >= len(buf) {
					return "", 0, ErrMalformed
				}
				buf[n] = '.'
				n++
			}
			if n+l > len(buf) {
				return "", 0, ErrMalformed
			}
			n += copy(buf[n:], msg[off+1:off+1+l])
			off += 1 + l
		case 0xc0:
			if off+2 > len(msg) {
				return "", 0, ErrShort
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if end < 0 {
				end = off + 2
			}
			hops++
			if ptr >= limit || hops > maxNameHops {
				return "", 0, ErrMalformed
			}
			limit = ptr
			off = ptr
		default: // 0x40 and 0x80: extended label types, obsolete
			return "", 0, ErrMalformed
		}
	}
}
