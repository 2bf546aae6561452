package tapirv1

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// ErrBadRecord is returned when a FlowRecord on the wire cannot be a flow.
var ErrBadRecord = errors.New("tapirv1: malformed flow record")

// FromRecord converts a flow record to its wire form, reusing dst's
// memory where it can (dst may be nil).
func FromRecord(r *flow.Record, dst *FlowRecord) *FlowRecord {
	if dst == nil {
		dst = &FlowRecord{}
	}
	dst.FlowId = append(dst.FlowId[:0], r.ID[:]...)
	dst.SensorId = r.SensorID
	dst.Interface = r.Interface
	dst.CommunityId = r.CommunityID
	dst.Protocol = uint32(r.Tuple.Proto)
	dst.Vlan = uint32(r.Tuple.VLAN)
	dst.InnerVlan = uint32(r.Tuple.InnerVLAN)
	dst.Source = endpointFrom(dst.Source, &r.Tuple.Src, r.Tuple.Family, r.Tuple.SrcPort, &r.Source)
	dst.Destination = endpointFrom(dst.Destination, &r.Tuple.Dst, r.Tuple.Family, r.Tuple.DstPort, &r.Destination)
	dst.StartUnixNano = unixNano(r.Start)
	dst.EndUnixNano = unixNano(r.End)
	dst.Reason = r.Reason.String()
	dst.Segment = r.Segment
	dst.Truncated = r.Truncated
	dst.BudgetCut = r.BudgetCut
	dst.Exported = exportedFrom(r.Exported)
	return dst
}

func exportedFrom(x *flow.Exported) *ExportedInfo {
	if x == nil {
		return nil
	}
	return &ExportedInfo{
		Exporter: x.Exporter, Protocol: x.Protocol, ObservationDomain: x.ObservationDomain,
		InputInterface: x.InputInterface, OutputInterface: x.OutputInterface, SamplingRate: x.SamplingRate,
		RawSourcePackets: x.RawSourcePackets, RawSourceBytes: x.RawSourceBytes,
		RawDestinationPackets: x.RawDestinationPackets, RawDestinationBytes: x.RawDestinationBytes,
		Biflow: x.Biflow,
	}
}

func exportedTo(p *ExportedInfo) *flow.Exported {
	if p == nil {
		return nil
	}
	return &flow.Exported{
		Exporter: p.Exporter, Protocol: p.Protocol, ObservationDomain: p.ObservationDomain,
		InputInterface: p.InputInterface, OutputInterface: p.OutputInterface, SamplingRate: p.SamplingRate,
		RawSourcePackets: p.RawSourcePackets, RawSourceBytes: p.RawSourceBytes,
		RawDestinationPackets: p.RawDestinationPackets, RawDestinationBytes: p.RawDestinationBytes,
		Biflow: p.Biflow,
	}
}

func endpointFrom(e *Endpoint, ip *flow.Addr, family uint8, port uint16, d *flow.DirStats) *Endpoint {
	if e == nil {
		e = &Endpoint{}
	}
	e.Ip = append(e.Ip[:0], ip.Bytes(family)...)
	e.Port = uint32(port)
	e.Packets, e.Bytes = d.Packets, d.Bytes
	e.StoredPackets, e.StoredBytes = d.StoredPackets, d.StoredBytes
	e.FirstUnixNano, e.LastUnixNano = unixNano(d.First), unixNano(d.Last)
	e.TcpFlags = uint32(d.TCPFlags)
	return e
}

// ToRecord converts a wire record back to a flow record. It validates
// every field that could make the record unusable.
func ToRecord(p *FlowRecord, r *flow.Record) error {
	if p == nil || p.Source == nil || p.Destination == nil {
		return fmt.Errorf("%w: missing endpoint", ErrBadRecord)
	}
	if len(p.FlowId) != len(r.ID) {
		return fmt.Errorf("%w: flow id of %d bytes", ErrBadRecord, len(p.FlowId))
	}
	if n := len(p.Source.Ip); n != len(p.Destination.Ip) || (n != 4 && n != 6 && n != 16) {
		return fmt.Errorf("%w: address lengths %d/%d", ErrBadRecord, len(p.Source.Ip), len(p.Destination.Ip))
	}
	if p.Protocol > 255 || p.Vlan > 4095 || p.InnerVlan > 4095 || p.Source.Port > 65535 || p.Destination.Port > 65535 || p.Source.TcpFlags > 255 || p.Destination.TcpFlags > 255 {
		return fmt.Errorf("%w: field out of range", ErrBadRecord)
	}
	reason, ok := flow.ParseEndReason(p.Reason)
	if !ok {
		return fmt.Errorf("%w: unknown reason %q", ErrBadRecord, p.Reason)
	}
	*r = flow.Record{
		SensorID:    p.SensorId,
		Interface:   p.Interface,
		CommunityID: p.CommunityId,
		Start:       fromUnixNano(p.StartUnixNano),
		End:         fromUnixNano(p.EndUnixNano),
		Reason:      reason,
		Segment:     p.Segment,
		Truncated:   p.Truncated,
		BudgetCut:   p.BudgetCut,
		Exported:    exportedTo(p.Exported),
	}
	copy(r.ID[:], p.FlowId)
	t := &r.Tuple
	t.Proto = uint8(p.Protocol)
	t.VLAN, t.InnerVLAN = uint16(p.Vlan), uint16(p.InnerVlan)
	switch len(p.Source.Ip) {
	case 4:
		t.Family = flow.FamilyIPv4
		t.Src = flow.AddrFrom4([4]byte(p.Source.Ip))
		t.Dst = flow.AddrFrom4([4]byte(p.Destination.Ip))
	case 6: // link-layer pseudo flow: MAC addresses
		t.Family = flow.FamilyLink
		copy(t.Src[:], p.Source.Ip)
		copy(t.Dst[:], p.Destination.Ip)
	default:
		t.Family = flow.FamilyIPv6
		t.Src, t.Dst = flow.Addr(p.Source.Ip), flow.Addr(p.Destination.Ip)
	}
	t.SrcPort, t.DstPort = uint16(p.Source.Port), uint16(p.Destination.Port)
	r.Source = dirStats(p.Source)
	r.Destination = dirStats(p.Destination)
	return nil
}

func dirStats(e *Endpoint) flow.DirStats {
	return flow.DirStats{
		Packets: e.Packets, Bytes: e.Bytes,
		StoredPackets: e.StoredPackets, StoredBytes: e.StoredBytes,
		First: fromUnixNano(e.FirstUnixNano), Last: fromUnixNano(e.LastUnixNano),
		TCPFlags: uint8(e.TcpFlags),
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
