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

func (f *fields) set(v *netflow.DataField) {
	b, ok := v.Value.([]byte)
	if !ok {
		return
	}
	if v.PenProvided {
		if v.Pen != penReverse {
			return
		}
		switch v.Type {
		case ieOctetDelta, ieOctetTotal:
			f.rbytes, f.hasReverse = uintBE(b), true
		case iePacketDelta, iePacketTotal:
			f.rpkts, f.hasReverse = uintBE(b), true
		case ieTCPFlags:
			f.rflags = uint8(uintBE(b))
		}
		return
	}
	switch v.Type {
	case ieOctetDelta, ieOctetTotal:
		f.bytes = uintBE(b)
	case iePacketDelta, iePacketTotal:
		f.pkts = uintBE(b)
	case ieProtocol:
		f.proto = uint8(uintBE(b))
	case ieTCPFlags:
		f.flags = uint8(uintBE(b))
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
	case ieInputIf:
		f.inIf = uint32(uintBE(b))
	case ieOutputIf:
		f.outIf = uint32(uintBE(b))
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
		case netflow.RawFlowSet:
			if fs.Id >= 256 {
				misses++
				e.c.addTemplateMiss()
			}
		}
	}
	return out, n, misses
}

// record builds a flow record from one data record's fields.
func (d *Decoder) record(e *exporter, h *header, f *fields) (flow.Record, bool) {
	if f.family == 0 {
		return flow.Record{}, false // no addresses: not a flow (or an unsupported layer-2 record)
	}
	var start, end time.Time
	switch {
	case f.startMs != 0:
		start, end = time.UnixMilli(int64(f.startMs)), time.UnixMilli(int64(f.endMs))
	case f.hasUp && f.sysInitMs != 0:
		start = time.UnixMilli(int64(f.sysInitMs + uint64(f.startUp)))
		end = time.UnixMilli(int64(f.sysInitMs + uint64(f.endUp)))
	case f.hasUp && h.version == 9:
		// sysUpTime-relative: the export time minus the uptime difference.
		exp := int64(h.exportSecs) * 1000
		start = time.UnixMilli(exp - int64(h.uptimeMs-f.startUp))
		end = time.UnixMilli(exp - int64(h.uptimeMs-f.endUp))
	default:
		start = time.Unix(int64(h.exportSecs), 0)
		end = start
	}
	if f.endMs == 0 && f.startMs != 0 {
		end = start
	}
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

// fromV5 converts a NetFlow v5 message.
func (d *Decoder) fromV5(e *exporter, out []flow.Record) ([]flow.Record, error) {
	p := &e.v5
	d.gap(e, 5, uint32(p.EngineType)<<8|uint32(p.EngineId), p.FlowSequence, uint32(len(p.Records)))
	exportMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6
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
		start := time.UnixMilli(exportMs - int64(p.SysUptime-rec.First)).UTC()
		end := time.UnixMilli(exportMs - int64(p.SysUptime-rec.Last)).UTC()
		x := &flow.Exported{Exporter: e.addr, Protocol: "netflow-v5", ObservationDomain: uint32(p.EngineType)<<8 | uint32(p.EngineId),
			InputInterface: uint32(rec.Input), OutputInterface: uint32(rec.Output), SamplingRate: sampling,
			RawSourcePackets: uint64(rec.DPkts), RawSourceBytes: uint64(rec.DOctets)}
		src := flow.DirStats{Packets: uint64(rec.DPkts), Bytes: uint64(rec.DOctets), First: start, Last: end, TCPFlags: rec.TCPFlags}
		out = append(out, d.finish(e, t, src, flow.DirStats{}, start, end, flow.ReasonIdleTimeout, x))
	}
	return out, nil
}
