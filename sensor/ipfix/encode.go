package ipfix

import (
	"encoding/binary"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Message layout constants (RFC 7011).
const (
	version       = 10
	headerLen     = 16
	setHeaderLen  = 4
	setTemplate   = 2
	varLen        = 0xffff
	TemplateIPv4  = 256 // template id of IPv4 flows
	TemplateIPv6  = 257 // template id of IPv6 flows
	penBit        = 0x8000
	reversePEN    = 29305 // RFC 5103 reverse information elements
	flowIDLen     = 16
	maxVarLenByte = 254 // longer variable-length values take the 3-byte length form
)

// Information elements (IANA IPFIX registry).
const (
	ieOctetDeltaCount         = 1
	iePacketDeltaCount        = 2
	ieProtocolIdentifier      = 4
	ieTCPControlBits          = 6
	ieSourceTransportPort     = 7
	ieSourceIPv4Address       = 8
	ieDestinationTransportPrt = 11
	ieDestinationIPv4Address  = 12
	ieSourceIPv6Address       = 27
	ieDestinationIPv6Address  = 28
	ieVLANID                  = 58
	ieFlowEndReason           = 136
	ieFlowStartMilliseconds   = 152
	ieFlowEndMilliseconds     = 153
)

// tapir's enterprise-specific elements (under Config.EnterpriseNumber).
const (
	// IECommunityID is the flow's Community ID (string, variable length).
	IECommunityID = 1
	// IEFlowID is the tapir flow id (octetArray, 16 octets).
	IEFlowID = 2
)

// field is one template field specifier.
type field struct {
	id     uint16
	length uint16
	pen    uint32 // 0: IANA element
}

// templateFields returns the fields of the template for an address family,
// in data record order.
func templateFields(family uint8, pen uint32) []field {
	src, dst, alen := uint16(ieSourceIPv4Address), uint16(ieDestinationIPv4Address), uint16(4)
	if family == flow.FamilyIPv6 {
		src, dst, alen = ieSourceIPv6Address, ieDestinationIPv6Address, 16
	}
	return []field{
		{id: src, length: alen},
		{id: dst, length: alen},
		{id: ieSourceTransportPort, length: 2},
		{id: ieDestinationTransportPrt, length: 2},
		{id: ieProtocolIdentifier, length: 1},
		{id: ieTCPControlBits, length: 2},
		{id: ieVLANID, length: 2},
		{id: iePacketDeltaCount, length: 8},
		{id: ieOctetDeltaCount, length: 8},
		{id: iePacketDeltaCount, length: 8, pen: reversePEN},
		{id: ieOctetDeltaCount, length: 8, pen: reversePEN},
		{id: ieTCPControlBits, length: 2, pen: reversePEN},
		{id: ieFlowStartMilliseconds, length: 8},
		{id: ieFlowEndMilliseconds, length: 8},
		{id: ieFlowEndReason, length: 1},
		{id: IECommunityID, length: varLen, pen: pen},
		{id: IEFlowID, length: flowIDLen, pen: pen},
	}
}

// fixedLen is the length of a data record without its variable-length
// Community ID (value and length prefix).
func fixedLen(family uint8) int {
	a := 4
	if family == flow.FamilyIPv6 {
		a = 16
	}
	return 2*a + 2 + 2 + 1 + 2 + 2 + 8*4 + 2 + 8 + 8 + 1 + flowIDLen
}

// appendTemplate appends one template record.
func appendTemplate(b []byte, id uint16, fields []field) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		if f.pen != 0 {
			b = binary.BigEndian.AppendUint16(b, f.id|penBit)
			b = binary.BigEndian.AppendUint16(b, f.length)
			b = binary.BigEndian.AppendUint32(b, f.pen)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, f.id)
		b = binary.BigEndian.AppendUint16(b, f.length)
	}
	return b
}

// RFC 5102 flowEndReason values.
const (
	endIdle     = 1
	endActive   = 2
	endOfFlow   = 3
	endForced   = 4
	endResource = 5
)

// EndReason maps a tapir end reason to RFC 5102's flowEndReason (which has
// fewer reasons than tapir): what a record's reason becomes after export.
func EndReason(r flow.EndReason) uint8 {
	switch r {
	case flow.ReasonIdleTimeout:
		return endIdle
	case flow.ReasonActive, flow.ReasonActiveTimeout:
		return endActive
	case flow.ReasonFIN, flow.ReasonRST:
		return endOfFlow
	case flow.ReasonEvicted:
		return endResource
	}
	return endForced
}

// values is what one data record carries.
type values struct {
	t                        *flow.Tuple
	pkts, octs, rpkts, rocts uint64
	flags, rflags            uint8
	start, end               time.Time
	reason                   uint8
	cid                      string
	id                       flow.ID
}

// encoder builds IPFIX messages of at most mtu bytes for one observation
// domain. It is not safe for concurrent use.
type encoder struct {
	domain       uint32
	mtu          int
	refreshMsgs  int
	refreshEvery time.Duration
	templates    []byte // the encoded template set (both templates)

	lastTemplates time.Time
	sinceTmpl     int    // messages since the templates were last sent
	seq           uint32 // data records in every message finished so far

	msg    []byte
	nrec   int    // data records in msg
	setOff int    // offset of the open data set's header; 0 when none
	setID  uint16 // template id of the open data set
	newBuf func() []byte
}

func newEncoder(cfg *Config, newBuf func() []byte) *encoder {
	e := &encoder{domain: cfg.ObservationDomain, mtu: cfg.MTU, refreshMsgs: cfg.TemplateRefreshMessages,
		refreshEvery: cfg.TemplateRefresh, newBuf: newBuf}
	t := []byte{0, setTemplate, 0, 0}
	t = appendTemplate(t, TemplateIPv4, templateFields(flow.FamilyIPv4, cfg.EnterpriseNumber))
	t = appendTemplate(t, TemplateIPv6, templateFields(flow.FamilyIPv6, cfg.EnterpriseNumber))
	binary.BigEndian.PutUint16(t[2:], uint16(len(t)))
	e.templates = t
	return e
}

// begin starts a message, with the templates when they are due.
func (e *encoder) begin(now time.Time) {
	e.msg = append(e.newBuf()[:0], make([]byte, headerLen)...)
	e.nrec, e.setOff = 0, 0
	if e.lastTemplates.IsZero() || now.Sub(e.lastTemplates) >= e.refreshEvery ||
		e.refreshMsgs > 0 && e.sinceTmpl >= e.refreshMsgs {
		e.msg = append(e.msg, e.templates...)
		e.lastTemplates, e.sinceTmpl = now, 0
	}
}

// recordLen is the encoded length of a data record.
func recordLen(v *values) int {
	n := fixedLen(v.t.Family) + 1 + len(v.cid)
	if len(v.cid) > maxVarLenByte {
		n += 2
	}
	return n
}

// add appends a data record. When it does not fit in the current
// message, the message is finished and returned (to be sent) and the
// record starts the next one.
func (e *encoder) add(v *values, now time.Time) (full []byte) {
	id := uint16(TemplateIPv4)
	if v.t.Family == flow.FamilyIPv6 {
		id = TemplateIPv6
	}
	need := recordLen(v)
	if e.msg != nil {
		room := e.mtu - len(e.msg)
		if e.setOff == 0 || e.setID != id {
			room -= setHeaderLen
		}
		if need > room {
			full = e.finish(now)
		}
	}
	if e.msg == nil {
		e.begin(now)
	}
	if e.setOff == 0 || e.setID != id {
		e.closeSet()
		e.setOff, e.setID = len(e.msg), id
		e.msg = binary.BigEndian.AppendUint16(e.msg, id)
		e.msg = append(e.msg, 0, 0)
	}
	e.msg = appendRecord(e.msg, v)
	e.nrec++
	return full
}

// closeSet writes the open data set's length.
func (e *encoder) closeSet() {
	if e.setOff != 0 {
		binary.BigEndian.PutUint16(e.msg[e.setOff+2:], uint16(len(e.msg)-e.setOff))
		e.setOff = 0
	}
}

// pending reports whether a message holds records not yet finished.
func (e *encoder) pending() bool { return e.msg != nil && e.nrec > 0 }

// finish completes the current message and returns it (nil when there is
// none). The sequence number is the count of data records in the
// messages before it (RFC 7011 section 3.1).
func (e *encoder) finish(now time.Time) []byte {
	if e.msg == nil {
		return nil
	}
	e.closeSet()
	m := e.msg
	binary.BigEndian.PutUint16(m[0:], version)
	binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
	binary.BigEndian.PutUint32(m[4:], uint32(now.Unix()))
	binary.BigEndian.PutUint32(m[8:], e.seq)
	binary.BigEndian.PutUint32(m[12:], e.domain)
	e.seq += uint32(e.nrec)
	e.sinceTmpl++
	e.msg, e.nrec = nil, 0
	return m
}

// appendRecord appends one data record in template field order.
func appendRecord(b []byte, v *values) []byte {
	t := v.t
	b = append(b, t.Src.Bytes(t.Family)...)
	b = append(b, t.Dst.Bytes(t.Family)...)
	sp, dp := t.SrcPort, t.DstPort
	if t.Proto == flow.ProtoICMP || t.Proto == flow.ProtoICMPv6 {
		// NetFlow's convention, which nfdump and most collectors read:
		// type<<8 | code in the destination port.
		sp, dp = 0, t.SrcPort<<8|t.DstPort&0xff
	}
	b = binary.BigEndian.AppendUint16(b, sp)
	b = binary.BigEndian.AppendUint16(b, dp)
	b = append(b, t.Proto)
	b = binary.BigEndian.AppendUint16(b, uint16(v.flags))
	b = binary.BigEndian.AppendUint16(b, t.VLAN)
	b = binary.BigEndian.AppendUint64(b, v.pkts)
	b = binary.BigEndian.AppendUint64(b, v.octs)
	b = binary.BigEndian.AppendUint64(b, v.rpkts)
	b = binary.BigEndian.AppendUint64(b, v.rocts)
	b = binary.BigEndian.AppendUint16(b, uint16(v.rflags))
	b = binary.BigEndian.AppendUint64(b, uint64(max(v.start.UnixMilli(), 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(v.end.UnixMilli(), 0)))
	b = append(b, v.reason)
	if len(v.cid) > maxVarLenByte {
		b = append(b, 255)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v.cid)))
	} else {
		b = append(b, byte(len(v.cid)))
	}
	b = append(b, v.cid...)
	b = append(b, v.id[:]...)
	return b
}
