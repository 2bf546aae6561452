package recordcodec

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tapir-sensor/tapir/flow"
)

// This file is the version 1 layout: one function per message, listing
// its fields with their numbers (strings and unsigneds number a run of
// fields from the first one given); the coder runs it to encode and to
// decode. Scalars are absent when zero, nested messages when their
// pointer is nil. Follow the compatibility rule of the package comment
// before changing anything here.

// familyCodes are the stored codes of the address families: a family's
// code is its index. Family 0 (unset) keeps 16-byte addresses, as
// flow.Addr.Bytes gives them.
var familyCodes = []uint8{flow.FamilyIPv4, flow.FamilyIPv6, flow.FamilyLink, 0}

// reasonCodes are the stored codes of the end reasons: a reason's code is
// its index, whatever flow.EndReason's numbering becomes.
var reasonCodes = []flow.EndReason{
	flow.ReasonActive, flow.ReasonFIN, flow.ReasonRST, flow.ReasonIdleTimeout,
	flow.ReasonActiveTimeout, flow.ReasonEvicted, flow.ReasonEndOfCapture,
}

// tunnelFamilyCodes are the stored codes of a tunnel level's address
// family (its outer IP header's).
var tunnelFamilyCodes = []uint8{flow.FamilyIPv4, flow.FamilyIPv6}

// tunnelCodes are the stored codes of the tunnel types: a type's code is
// its index, whatever flow.TunnelType's numbering becomes.
var tunnelCodes = []flow.TunnelType{
	flow.TunnelIPIP, flow.TunnelGRE, flow.TunnelERSPAN1, flow.TunnelERSPAN2, flow.TunnelERSPAN3,
	flow.TunnelVXLAN, flow.TunnelGeneve, flow.TunnelGTPU, flow.TunnelTeredo,
}

// record is the top-level message. Field 9 (start) precedes the times
// stored relative to it.
func (c *coder) record(r *flow.Record) {
	t := &r.Tuple
	c.fixed(1, r.ID[:])
	c.str(2, &r.SensorID)
	c.str(3, &r.Interface)
	c.str(4, &r.CommunityID)
	enum(c, 5, &t.Family, familyCodes)
	unsigned(c, 6, &t.Proto)
	unsigned(c, 7, &t.VLAN)
	unsigned(c, 8, &t.InnerVLAN)
	start := c.moment(9, &r.Start, 0)
	c.moment(10, &r.End, start)
	c.endpoint(11, t.Family, start, &t.Src, &t.SrcPort, &r.Source)
	c.endpoint(12, t.Family, start, &t.Dst, &t.DstPort, &r.Destination)
	enum(c, 13, &r.Reason, reasonCodes)
	unsigned(c, 14, &r.Segment)
	unsigned(c, 15, &r.Truncated)
	unsigned(c, 16, &r.BudgetCut)
	message(c, 17, &r.App, (*coder).app)
	message(c, 18, &r.Timeline, (*coder).timeline)
	message(c, 19, &r.Enrichment, (*coder).enrichment)
	message(c, 20, &r.Exported, (*coder).exported)
	message(c, 21, &r.Tunnels, (*coder).tunnelChain)
	unsigned(c, 22, &t.Mirror) // a mirror interface's whole VNI / session ID / GRE key
}

// endpoint is one side of the flow: its address (in the family's length,
// always present), port and counters; first and last are relative to the
// flow's start.
func (c *coder) endpoint(n protowire.Number, family uint8, start int64, a *flow.Addr, port *uint16, d *flow.DirStats) {
	if !c.open(n, true) {
		if c.dec {
			c.corrupt(n, "no endpoint")
		}
		return
	}
	c.addr(1, family, a)
	unsigned(c, 2, port)
	unsigneds(c, 3, &d.Packets, &d.Bytes, &d.StoredPackets, &d.StoredBytes) // 3 to 6
	c.moment(7, &d.First, start)
	c.moment(8, &d.Last, start)
	unsigned(c, 9, &d.TCPFlags)
	c.close()
}

// addr codes an address as the bytes its family puts on the wire: 4 for
// IPv4, 6 (a MAC) for link-layer pseudo flows, else 16.
func (c *coder) addr(n protowire.Number, family uint8, a *flow.Addr) {
	if !c.dec {
		c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
		c.buf = protowire.AppendBytes(c.buf, a.Bytes(family))
		return
	}
	b, ok := c.bytesOf(n)
	if !ok {
		c.corrupt(n, "no address")
		return
	}
	if want := len(a.Bytes(family)); len(b) != want {
		c.corrupt(n, "address of %d bytes for family %d, want %d", len(b), family, want)
		return
	}
	if family == flow.FamilyIPv4 {
		*a = flow.AddrFrom4([4]byte(b))
		return
	}
	copy(a[:], b)
}

// app is flow.AppMeta.
func (c *coder) app(a *flow.AppMeta) {
	message(c, 1, &a.DNS, (*coder).dns)
	message(c, 2, &a.TLS, (*coder).tls)
	message(c, 3, &a.HTTP, (*coder).http)
	message(c, 4, &a.SSH, (*coder).ssh)
}

func (c *coder) dns(d *flow.DNSMeta) {
	unsigned(c, 1, &d.ID)
	c.str(2, &d.QueryName)
	unsigned(c, 3, &d.QueryType)
	c.boolean(4, &d.HasResponse)
	unsigned(c, 5, &d.ResponseCode)
	repeated(c, 6, &d.Answers, (*coder).dnsAnswer)
}

func (c *coder) dnsAnswer(a *flow.DNSAnswer) {
	c.str(1, &a.Name)
	unsigned(c, 2, &a.Type)
	unsigned(c, 3, &a.TTL)
	c.str(4, &a.Data)
}

func (c *coder) tls(t *flow.TLSMeta) {
	c.str(1, &t.ServerName)
	c.strs(2, &t.ALPN)
	unsigned(c, 3, &t.ClientVersion)
	c.str(4, &t.JA4)
	c.str(5, &t.JA3)
	unsigned(c, 6, &t.ServerVersion)
	unsigned(c, 7, &t.Cipher)
	c.str(8, &t.NextProtocol)
	c.boolean(9, &t.QUIC)
}

func (c *coder) http(h *flow.HTTPMeta) {
	c.strings(1, &h.Method, &h.Host, &h.URI, &h.UserAgent) // 1 to 4
	signed(c, 5, &h.StatusCode)
	c.str(6, &h.ContentType)
}

func (c *coder) ssh(s *flow.SSHMeta) {
	c.str(1, &s.ClientVersion)
	c.str(2, &s.ServerVersion)
}

// timeline is flow.Timeline; its go-tsz series are kept as they are.
func (c *coder) timeline(t *flow.Timeline) {
	signed(c, 1, &t.Interval)
	unsigned(c, 2, &t.Points)
	unsigned(c, 3, &t.Cut)
	c.bytes(4, &t.Packets)
	c.bytes(5, &t.Bytes)
}

// enrichment is flow.Enrichment; an endpoint without context is absent.
func (c *coder) enrichment(e *flow.Enrichment) {
	embedded(c, 1, &e.Source, e.Source != (flow.EndpointEnrichment{}), (*coder).endpointEnrichment)
	embedded(c, 2, &e.Destination, e.Destination != (flow.EndpointEnrichment{}), (*coder).endpointEnrichment)
	c.str(3, &e.Domain)
	c.str(4, &e.DomainSource)
	repeated(c, 5, &e.Threats, (*coder).threat)
	message(c, 6, &e.Rarity, (*coder).rarity)
}

func (c *coder) endpointEnrichment(e *flow.EndpointEnrichment) {
	message(c, 1, &e.Geo, (*coder).geo)
	message(c, 2, &e.AS, (*coder).as)
	message(c, 3, &e.Asset, (*coder).asset)
}

func (c *coder) geo(g *flow.Geo) {
	c.strings(1, &g.Name, &g.CityName, &g.CountryISOCode, &g.CountryName, &g.RegionName, &g.ContinentCode, &g.Timezone) // 1 to 7
	c.boolean(8, &g.HasLocation)
	c.double(9, &g.Lat)
	c.double(10, &g.Lon)
}

func (c *coder) as(a *flow.AS) {
	unsigned(c, 1, &a.Number)
	c.str(2, &a.Organization)
}

func (c *coder) asset(a *flow.Asset) {
	c.strings(1, &a.Name, &a.Site, &a.Owner, &a.Role, &a.Criticality) // 1 to 5
	c.boolean(6, &a.Internal)
}

func (c *coder) threat(m *flow.ThreatMatch) {
	c.strings(1, &m.Feed, &m.Type, &m.Indicator, &m.Field, &m.Atomic, &m.Description, &m.Confidence, &m.ID) // 1 to 8
}

func (c *coder) rarity(r *flow.Rarity) {
	unsigned(c, 1, &r.FirstSeen)
	unsigneds(c, 2, &r.PairCount, &r.ServerPortCount, &r.JA4Count, &r.DomainCount) // 2 to 5
}

// exported is flow.Exported.
func (c *coder) exported(x *flow.Exported) {
	c.strings(1, &x.Exporter, &x.Protocol)                                                                    // 1, 2
	unsigneds(c, 3, &x.ObservationDomain, &x.InputInterface, &x.OutputInterface, &x.SamplingRate)             // 3 to 6
	unsigneds(c, 7, &x.RawSourcePackets, &x.RawSourceBytes, &x.RawDestinationPackets, &x.RawDestinationBytes) // 7 to 10
	c.boolean(11, &x.Biflow)
}

// tunnelChain is flow.TunnelChain: its levels, outermost first.
func (c *coder) tunnelChain(t *flow.TunnelChain) {
	repeated(c, 1, &t.Levels, (*coder).tunnel)
}

// tunnel is one flow.Tunnel level: its type and family (codes), the
// tunnel's own addresses (family 2 precedes them) and ports, its IP
// protocol, its identifier and whether it is a mirror encapsulation.
func (c *coder) tunnel(l *flow.Tunnel) {
	enum(c, 1, &l.Type, tunnelCodes)
	enum(c, 2, &l.Family, tunnelFamilyCodes)
	c.addr(3, l.Family, &l.Src)
	c.addr(4, l.Family, &l.Dst)
	unsigneds(c, 5, &l.SrcPort, &l.DstPort) // 5, 6
	unsigned(c, 7, &l.Proto)
	c.boolean(8, &l.HasID)
	unsigned(c, 9, &l.ID)
	c.boolean(10, &l.Mirror)
}
