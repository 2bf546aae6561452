package flowinput

import (
	"encoding/binary"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/tapir-sensor/tapir/flow"
)

// header is what a data record needs from its message header.
type header struct {
	version    uint16
	domain     uint32
	uptimeMs   uint32 // NetFlow v9 sysUpTime
	exportSecs uint32
}

// Information element ids (IANA IPFIX registry; NetFlow v9 uses the same
// numbers for these).
const (
	ieOctetDelta          = 1
	iePacketDelta         = 2
	ieProtocol            = 4
	ieTCPFlags            = 6
	ieSrcPort             = 7
	ieSrcIPv4             = 8
	ieInputIf             = 10
	ieDstPort             = 11
	ieDstIPv4             = 12
	ieOutputIf            = 14
	ieEndSysUp            = 21
	ieStartSysUp          = 22
	ieSrcIPv6             = 27
	ieDstIPv6             = 28
	ieICMPTypeCode4       = 32
	ieSamplingInterval    = 34
	ieSamplerRandom       = 50
	ieVLAN                = 58
	ieOctetTotal          = 85
	iePacketTotal         = 86
	ieFlowEndReason       = 136
	ieICMPTypeCode6       = 139
	ieStartSeconds        = 150
	ieEndSeconds          = 151
	ieStartMillis         = 152
	ieEndMillis           = 153
	ieStartMicros         = 154
	ieEndMicros           = 155
	ieSysInitMillis       = 160
	ieICMPType4           = 176
	ieICMPCode4           = 177
	ieICMPType6           = 178
	ieICMPCode6           = 179
	ieDot1qVLAN           = 243
	ieDot1qCustomerVLAN   = 245
	ieSamplingPacketIntvl = 305

	// penReverse is the RFC 5103 reverse-element enterprise number.
	penReverse = 29305
)

// uintBE reads a big-endian unsigned integer of 1 to 8 bytes (reduced
// size encoding); longer values read their last 8 bytes.
func uintBE(b []byte) uint64 {
	if len(b) > 8 {
		b = b[len(b)-8:]
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// fields collects the elements of one data record.
type fields struct {
	src, dst                   flow.Addr
	family                     uint8
	sport, dport               uint16
	proto                      uint8
	flags, rflags              uint8
	bytes, pkts, rbytes, rpkts uint64
	hasReverse                 bool
	inIf, outIf                uint32
	startUp, endUp             uint32
	hasUp                      bool
	startMs, endMs             uint64
	sysInitMs                  uint64
	icmpType, icmpCode         uint16
	hasICMP                    bool
	vlan, innerVLAN            uint16
	sampling                   uint32
	reason                     uint8
}

// set takes one field of a NetFlow v9/IPFIX data record; fields of
// unknown types or enterprises are ignored.
func (f *fields) set(v *netflow.DataField) {
	b, ok := v.Value.([]byte)
	if !ok {
		return
	}
	if v.PenProvided {
		if v.Pen == penReverse {
			f.setReverse(v.Type, b)
		}
		return
	}
	if !f.setTuple(v.Type, b) && !f.setTime(v.Type, b) {
		f.setCounter(v.Type, b)
	}
}

// setReverse sets a reverse-direction (RFC 5103) counter or flags.
func (f *fields) setReverse(t uint16, b []byte) {
	switch t {
	case ieOctetDelta, ieOctetTotal:
		f.rbytes, f.hasReverse = uintBE(b), true
	case iePacketDelta, iePacketTotal:
		f.rpkts, f.hasReverse = uintBE(b), true
	case ieTCPFlags:
		f.rflags = uint8(uintBE(b))
	}
}

// setTuple sets a flow-key field (protocol, ports, addresses, ICMP type
// and code, VLANs); false if t is none of them.
func (f *fields) setTuple(t uint16, b []byte) bool {
	switch t {
	case ieProtocol:
		f.proto = uint8(uintBE(b))
	case ieSrcPort:
		f.sport = uint16(uintBE(b))
	case ieDstPort:
		f.dport = uint16(uintBE(b))
	case ieSrcIPv4:
		if len(b) == 4 {
			f.src, f.family = flow.AddrFrom4([4]byte(b)), flow.FamilyIPv4
		}
	case ieDstIPv4:
		if len(b) == 4 {
			f.dst = flow.AddrFrom4([4]byte(b))
		}
	case ieSrcIPv6:
		if len(b) == 16 {
			f.src, f.family = flow.Addr(b), flow.FamilyIPv6
		}
	case ieDstIPv6:
		if len(b) == 16 {
			f.dst = flow.Addr(b)
		}
	case ieICMPTypeCode4, ieICMPTypeCode6:
		tc := uint16(uintBE(b))
		f.icmpType, f.icmpCode, f.hasICMP = tc>>8, tc&0xff, true
	case ieICMPType4, ieICMPType6:
		f.icmpType, f.hasICMP = uint16(uintBE(b)), true
	case ieICMPCode4, ieICMPCode6:
		f.icmpCode, f.hasICMP = uint16(uintBE(b)), true
	case ieVLAN, ieDot1qVLAN:
		f.vlan = uint16(uintBE(b)) & 0xfff
	case ieDot1qCustomerVLAN:
		f.innerVLAN = uint16(uintBE(b)) & 0xfff
	default:
		return false
	}
	return true
}

// setTime sets a flow time or the exporter's boot time; false if t is
// none of them.
func (f *fields) setTime(t uint16, b []byte) bool {
	switch t {
	case ieStartSysUp:
		f.startUp, f.hasUp = uint32(uintBE(b)), true
	case ieEndSysUp:
		f.endUp, f.hasUp = uint32(uintBE(b)), true
	case ieStartSeconds:
		f.startMs = uintBE(b) * 1000
	case ieEndSeconds:
		f.endMs = uintBE(b) * 1000
	case ieStartMillis:
		f.startMs = uintBE(b)
	case ieEndMillis:
		f.endMs = uintBE(b)
	case ieStartMicros:
		f.startMs = ntpMillis(uintBE(b))
	case ieEndMicros:
		f.endMs = ntpMillis(uintBE(b))
	case ieSysInitMillis:
		f.sysInitMs = uintBE(b)
	default:
		return false
	}
	return true
}

// setCounter sets a counter, interface, sampling interval, flags or end
// reason.
func (f *fields) setCounter(t uint16, b []byte) {
	switch t {
	case ieOctetDelta, ieOctetTotal:
		f.bytes = uintBE(b)
	case iePacketDelta, iePacketTotal:
		f.pkts = uintBE(b)
	case ieTCPFlags:
		f.flags = uint8(uintBE(b))
	case ieInputIf:
		f.inIf = uint32(uintBE(b))
	case ieOutputIf:
		f.outIf = uint32(uintBE(b))
	case ieSamplingInterval, ieSamplerRandom, ieSamplingPacketIntvl:
		f.sampling = uint32(uintBE(b))
	case ieFlowEndReason:
		f.reason = uint8(uintBE(b))
	}
}

// ntpMillis converts an NTP 64-bit timestamp (RFC 7011 dateTimeMicroseconds)
// to Unix milliseconds.
func ntpMillis(v uint64) uint64 {
	const ntpToUnix = 2208988800
	secs := v >> 32
	if secs < ntpToUnix {
		return 0
	}
	frac := v & 0xffffffff
	return (secs-ntpToUnix)*1000 + (frac*1000)>>32
}

// endReasons maps IPFIX flowEndReason (RFC 5102) to tapir's.
func endReason(r uint8) flow.EndReason {
	switch r {
	case 2:
		return flow.ReasonActiveTimeout
	case 3:
		return flow.ReasonFIN
	case 4:
		return flow.ReasonEndOfCapture
	case 5:
		return flow.ReasonEvicted
	}
	return flow.ReasonIdleTimeout
}

// fromSets converts the data sets of a v9/IPFIX message. It returns the
// number of data records seen and of sets whose template was unknown.
func (d *Decoder) fromSets(e *exporter, h *header, sets []interface{}, out []flow.Record) ([]flow.Record, int, int) {
	n, misses := 0, 0
	for _, s := range sets {
		switch fs := s.(type) {
		case netflow.DataFlowSet:
			for i := range fs.Records {
				n++
				var f fields
				for j := range fs.Records[i].Values {
					f.set(&fs.Records[i].Values[j])
				}
				if r, ok := d.record(e, h, &f); ok {
					out = append(out, r)
				}
			}
		case netflow.OptionsDataFlowSet:
			if h.version == 10 {
				e.noteSysInit(h.domain, fs.Records)
			}
		case netflow.RawFlowSet:
			if fs.Id >= 256 {
				misses++
				e.c.addTemplateMiss()
			}
		}
	}
	return out, n, misses
}

// maxSysInitDomains bounds the observation domains whose system init
// time an exporter's options records can set.
const maxSysInitDomains = 1024

// noteSysInit keeps the systemInitTimeMilliseconds (IE 160) of IPFIX
// options records for the observation domain.
func (e *exporter) noteSysInit(domain uint32, recs []netflow.OptionsDataRecord) {
	for i := range recs {
		for _, v := range recs[i].OptionsValues {
			b, ok := v.Value.([]byte)
			if v.PenProvided || v.Type != ieSysInitMillis || !ok || len(b) == 0 {
				continue
			}
			if _, known := e.sysInit[domain]; known || len(e.sysInit) < maxSysInitDomains {
				e.sysInit[domain] = uintBE(b)
			}
		}
	}
}

// times returns a data record's start and end: absolute times when the
// record has them; else, IPFIX flowStart/EndSysUpTime relative to the
// system init time (the record's own IE 160, else the last one of the
// domain's options records); NetFlow v9 First/Last Switched relative to
// the header's sysUpTime, read as nfdump reads them; else the export time.
func (e *exporter) times(h *header, f *fields) (time.Time, time.Time) {
	if f.startMs != 0 {
		start, end := time.UnixMilli(int64(f.startMs)), time.UnixMilli(int64(f.endMs))
		if f.endMs == 0 {
			end = start
		}
		return start, end
	}
	if f.hasUp && h.version == 10 {
		init := f.sysInitMs
		if init == 0 {
			init = e.sysInit[h.domain]
		}
		if init != 0 {
			return time.UnixMilli(int64(init + uint64(f.startUp))), time.UnixMilli(int64(init + uint64(f.endUp)))
		}
	}
	if f.hasUp && h.version == 9 {
		return v9Times(h, f)
	}
	start := time.Unix(int64(h.exportSecs), 0)
	return start, start
}

// v9Times reads NetFlow v9 sysUpTime-relative times as nfdump does: the
// exporter booted at the export time minus the header's sysUpTime; the
// flow ended Last ms after boot (even when that is past the header's
// uptime) and started First ms after boot, or 2^32 ms earlier when First
// is above Last (the uptime counter wrapped during the flow).
func v9Times(h *header, f *fields) (time.Time, time.Time) {
	boot := int64(h.exportSecs)*1000 - int64(h.uptimeMs)
	first, last := int64(f.startUp), int64(f.endUp)
	if last == 0 {
		last = first
	}
	if first > last {
		first -= 1 << 32
	}
	return time.UnixMilli(boot + first), time.UnixMilli(boot + last)
}

// record builds a flow record from one data record's fields.
func (d *Decoder) record(e *exporter, h *header, f *fields) (flow.Record, bool) {
	if f.family == 0 {
		return flow.Record{}, false // no addresses: not a flow (or an unsupported layer-2 record)
	}
	start, end := e.times(h, f)
	x := &flow.Exported{Exporter: e.addr, Protocol: "ipfix", ObservationDomain: h.domain,
		InputInterface: f.inIf, OutputInterface: f.outIf, SamplingRate: f.sampling,
		RawSourcePackets: f.pkts, RawSourceBytes: f.bytes, RawDestinationPackets: f.rpkts, RawDestinationBytes: f.rbytes,
		Biflow: f.hasReverse}
	if h.version == 9 {
		x.Protocol = "netflow-v9"
	}
	t := flow.Tuple{Src: f.src, Dst: f.dst, Proto: f.proto, Family: f.family, VLAN: f.vlan, InnerVLAN: f.innerVLAN}
	switch {
	case f.proto == flow.ProtoICMP || f.proto == flow.ProtoICMPv6:
		t.SrcPort, t.DstPort = icmpPorts(f)
	case flow.HasPorts(f.proto):
		t.SrcPort, t.DstPort = f.sport, f.dport
	}
	src := flow.DirStats{Packets: f.pkts, Bytes: f.bytes, First: start.UTC(), Last: end.UTC(), TCPFlags: f.flags}
	var dst flow.DirStats
	if f.hasReverse {
		dst = flow.DirStats{Packets: f.rpkts, Bytes: f.rbytes, TCPFlags: f.rflags}
		if dst.Packets > 0 {
			dst.First, dst.Last = start.UTC(), end.UTC()
		}
	}
	return d.finish(e, t, src, dst, start, end, endReason(f.reason), x), true
}

// icmpPorts returns the ICMP type and code of a record: from the ICMP
// elements, else from the destination port as type<<8|code (NetFlow's
// convention).
func icmpPorts(f *fields) (uint16, uint16) {
	if f.hasICMP {
		return f.icmpType, f.icmpCode
	}
	return f.dport >> 8, f.dport & 0xff
}

// finish scales by the sampling rate and fills identity fields.
func (d *Decoder) finish(e *exporter, t flow.Tuple, src, dst flow.DirStats, start, end time.Time, reason flow.EndReason, x *flow.Exported) flow.Record {
	if s := uint64(x.SamplingRate); s > 1 {
		src.Packets, src.Bytes = src.Packets*s, src.Bytes*s
		dst.Packets, dst.Bytes = dst.Packets*s, dst.Bytes*s
	}
	r := flow.Record{
		ID:          flow.NewID(start, e.hash, d.seq.Add(1)),
		SensorID:    e.sensorID,
		Tuple:       t,
		Source:      src,
		Destination: dst,
		Start:       start.UTC(),
		End:         end.UTC(),
		Reason:      reason,
		Exported:    x,
	}
	var buf [flow.CommunityIDLen]byte
	r.CommunityID = string(flow.AppendCommunityID(buf[:0], d.seed, &r.Tuple))
	return r
}

// v5Times reads a NetFlow v5 record's First and Last (sysUpTime ms) as
// nfdump does: relative to boot (export time - header uptime), First
// 2^32 ms earlier when it is above Last (the counter wrapped during the
// flow), and both 2^32 ms earlier when Last is more than 100 s past the
// header's uptime (a flow from before the counter wrapped).
func v5Times(boot int64, uptime, first, last uint32) (time.Time, time.Time) {
	start, end := boot+int64(first), boot+int64(last)
	if first > last {
		start -= 1 << 32
	}
	if last > uptime && last-uptime > 100_000 {
		start -= 1 << 32
		end -= 1 << 32
	}
	return time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC()
}

// fromV5 converts a NetFlow v5 message.
func (d *Decoder) fromV5(e *exporter, out []flow.Record) ([]flow.Record, error) {
	p := &e.v5
	d.gap(e, 5, uint32(p.EngineType)<<8|uint32(p.EngineId), p.FlowSequence, uint32(len(p.Records)))
	exportMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6 // boot: exportMs - SysUptime
	sampling := uint32(p.SamplingInterval & 0x3fff)
	n := int(p.Count)
	if n > len(p.Records) {
		n = len(p.Records)
	}
	for i := 0; i < n; i++ {
		rec := &p.Records[i]
		var a, b [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(rec.SrcAddr))
		binary.BigEndian.PutUint32(b[:], uint32(rec.DstAddr))
		f := fields{src: flow.AddrFrom4(a), dst: flow.AddrFrom4(b), family: flow.FamilyIPv4, proto: rec.Proto,
			sport: rec.SrcPort, dport: rec.DstPort}
		t := flow.Tuple{Src: f.src, Dst: f.dst, Proto: f.proto, Family: f.family}
		switch {
		case f.proto == flow.ProtoICMP:
			t.SrcPort, t.DstPort = icmpPorts(&f)
		case flow.HasPorts(f.proto):
			t.SrcPort, t.DstPort = f.sport, f.dport
		}
		start, end := v5Times(exportMs-int64(p.SysUptime), p.SysUptime, rec.First, rec.Last)
		x := &flow.Exported{Exporter: e.addr, Protocol: "netflow-v5", ObservationDomain: uint32(p.EngineType)<<8 | uint32(p.EngineId),
			InputInterface: uint32(rec.Input), OutputInterface: uint32(rec.Output), SamplingRate: sampling,
			RawSourcePackets: uint64(rec.DPkts), RawSourceBytes: uint64(rec.DOctets)}
		src := flow.DirStats{Packets: uint64(rec.DPkts), Bytes: uint64(rec.DOctets), First: start, Last: end, TCPFlags: rec.TCPFlags}
		out = append(out, d.finish(e, t, src, flow.DirStats{}, start, end, flow.ReasonIdleTimeout, x))
	}
	return out, nil
}
