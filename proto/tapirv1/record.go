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
	dst.App = appFrom(r.App)
	dst.Timeline = timelineFrom(r.Timeline)
	dst.Enrichment = enrichmentFrom(r.Enrichment)
	dst.Tunnels = tunnelsFrom(r.Tunnels, dst.Tunnels[:0])
	return dst
}

// tunnelsFrom converts a tunnel chain to its wire form, appending to dst
// (nil for no chain).
func tunnelsFrom(c *flow.TunnelChain, dst []*Tunnel) []*Tunnel {
	if c.Len() == 0 {
		return nil
	}
	for i := range c.Levels {
		l := &c.Levels[i]
		dst = append(dst, &Tunnel{Type: l.Type.String(), SourceIp: append([]byte(nil), l.Src.Bytes(l.Family)...),
			DestinationIp: append([]byte(nil), l.Dst.Bytes(l.Family)...),
			SourcePort:    uint32(l.SrcPort), DestinationPort: uint32(l.DstPort), Protocol: uint32(l.Proto), HasId: l.HasID, Id: l.ID})
	}
	return dst
}

// tunnelsTo converts a wire tunnel chain back, rejecting levels that
// cannot be a tunnel (nil when p is empty).
func tunnelsTo(p []*Tunnel) (*flow.TunnelChain, error) {
	if len(p) == 0 {
		return nil, nil
	}
	c := &flow.TunnelChain{Levels: make([]flow.Tunnel, len(p))}
	for i, w := range p {
		l := &c.Levels[i]
		if w == nil {
			return nil, fmt.Errorf("%w: tunnel level %d missing", ErrBadRecord, i)
		}
		typ, ok := flow.ParseTunnelType(w.Type)
		if !ok {
			return nil, fmt.Errorf("%w: tunnel type %q", ErrBadRecord, w.Type)
		}
		if w.SourcePort > 0xffff || w.DestinationPort > 0xffff || w.Protocol > 0xff {
			return nil, fmt.Errorf("%w: tunnel level %d out of range", ErrBadRecord, i)
		}
		switch n := len(w.SourceIp); {
		case n != len(w.DestinationIp) || (n != 4 && n != 16):
			return nil, fmt.Errorf("%w: tunnel address lengths %d/%d", ErrBadRecord, len(w.SourceIp), len(w.DestinationIp))
		case n == 4:
			l.Family = flow.FamilyIPv4
			l.Src, l.Dst = flow.AddrFrom4([4]byte(w.SourceIp)), flow.AddrFrom4([4]byte(w.DestinationIp))
		default:
			l.Family = flow.FamilyIPv6
			l.Src, l.Dst = flow.Addr(w.SourceIp), flow.Addr(w.DestinationIp)
		}
		l.Type, l.Proto, l.HasID, l.ID = typ, uint8(w.Protocol), w.HasId, w.Id
		l.SrcPort, l.DstPort = uint16(w.SourcePort), uint16(w.DestinationPort)
	}
	return c, nil
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
		Start:       time.Unix(0, p.StartUnixNano).UTC(), // a flow always has a start, even at Unix time 0
		End:         time.Unix(0, p.EndUnixNano).UTC(),
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
	app, err := appTo(p.App)
	if err != nil {
		return err
	}
	r.App = app
	tl, err := timelineTo(p.Timeline)
	if err != nil {
		return err
	}
	r.Timeline = tl
	r.Enrichment = enrichmentTo(p.Enrichment)
	r.Tunnels, err = tunnelsTo(p.Tunnels)
	return err
}

// appFrom converts application metadata to its wire form (nil: none).
func appFrom(a *flow.AppMeta) *AppMeta {
	if a == nil {
		return nil
	}
	p := &AppMeta{}
	if d := a.DNS; d != nil {
		p.Dns = &DNSMeta{Id: uint32(d.ID), QueryName: d.QueryName, QueryType: uint32(d.QueryType),
			HasResponse: d.HasResponse, ResponseCode: uint32(d.ResponseCode)}
		for _, an := range d.Answers {
			p.Dns.Answers = append(p.Dns.Answers, &DNSAnswer{Name: an.Name, Type: uint32(an.Type), Ttl: an.TTL, Data: an.Data})
		}
	}
	if t := a.TLS; t != nil {
		p.Tls = &TLSMeta{ServerName: t.ServerName, Alpn: append([]string(nil), t.ALPN...), ClientVersion: uint32(t.ClientVersion),
			Ja4: t.JA4, Ja3: t.JA3, ServerVersion: uint32(t.ServerVersion), Cipher: uint32(t.Cipher), Quic: t.QUIC,
			NextProtocol: t.NextProtocol}
	}
	if h := a.HTTP; h != nil {
		p.Http = &HTTPMeta{Method: h.Method, Host: h.Host, Uri: h.URI, UserAgent: h.UserAgent,
			StatusCode: uint32(h.StatusCode), ContentType: h.ContentType}
	}
	if s := a.SSH; s != nil {
		p.Ssh = &SSHMeta{ClientVersion: s.ClientVersion, ServerVersion: s.ServerVersion}
	}
	return p
}

// appTo converts wire metadata back, rejecting out-of-range numbers.
func appTo(p *AppMeta) (*flow.AppMeta, error) {
	if p == nil {
		return nil, nil
	}
	a := &flow.AppMeta{}
	if d := p.Dns; d != nil {
		if d.Id > 0xffff || d.QueryType > 0xffff || d.ResponseCode > 0xff {
			return nil, fmt.Errorf("%w: dns field out of range", ErrBadRecord)
		}
		a.DNS = &flow.DNSMeta{ID: uint16(d.Id), QueryName: d.QueryName, QueryType: uint16(d.QueryType),
			HasResponse: d.HasResponse, ResponseCode: uint8(d.ResponseCode)}
		for _, an := range d.Answers {
			if an == nil || an.Type > 0xffff {
				return nil, fmt.Errorf("%w: dns answer", ErrBadRecord)
			}
			a.DNS.Answers = append(a.DNS.Answers, flow.DNSAnswer{Name: an.Name, Type: uint16(an.Type), TTL: an.Ttl, Data: an.Data})
		}
	}
	if t := p.Tls; t != nil {
		if t.ClientVersion > 0xffff || t.ServerVersion > 0xffff || t.Cipher > 0xffff {
			return nil, fmt.Errorf("%w: tls field out of range", ErrBadRecord)
		}
		a.TLS = &flow.TLSMeta{ServerName: t.ServerName, ALPN: t.Alpn, ClientVersion: uint16(t.ClientVersion),
			JA4: t.Ja4, JA3: t.Ja3, ServerVersion: uint16(t.ServerVersion), Cipher: uint16(t.Cipher), QUIC: t.Quic,
			NextProtocol: t.NextProtocol}
	}
	if h := p.Http; h != nil {
		if h.StatusCode > 999 {
			return nil, fmt.Errorf("%w: http status %d", ErrBadRecord, h.StatusCode)
		}
		a.HTTP = &flow.HTTPMeta{Method: h.Method, Host: h.Host, URI: h.Uri, UserAgent: h.UserAgent,
			StatusCode: int(h.StatusCode), ContentType: h.ContentType}
	}
	if s := p.Ssh; s != nil {
		a.SSH = &flow.SSHMeta{ClientVersion: s.ClientVersion, ServerVersion: s.ServerVersion}
	}
	return a, nil
}

func timelineFrom(t *flow.Timeline) *Timeline {
	if t == nil {
		return nil
	}
	return &Timeline{IntervalNano: int64(t.Interval), Points: t.Points, Cut: t.Cut,
		Packets: append([]byte(nil), t.Packets...), Bytes: append([]byte(nil), t.Bytes...)}
}

// timelineTo converts a wire timeline back; its series are checked when
// decoded (flow.Timeline.Decode), not here.
func timelineTo(p *Timeline) (*flow.Timeline, error) {
	if p == nil {
		return nil, nil
	}
	if p.IntervalNano <= 0 {
		return nil, fmt.Errorf("%w: timeline interval %d", ErrBadRecord, p.IntervalNano)
	}
	return &flow.Timeline{Interval: time.Duration(p.IntervalNano), Points: p.Points, Cut: p.Cut,
		Packets: p.Packets, Bytes: p.Bytes}, nil
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
