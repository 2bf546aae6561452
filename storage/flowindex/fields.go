package flowindex

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/tapir-sensor/tapir/flow"
)

// Kind is how a field's values compare: as text, as an address, or as a
// number (a count, a Unix time in nanoseconds, or a duration in
// nanoseconds).
type Kind uint8

// Kinds.
const (
	KindKeyword  Kind = iota // text; compared without regard to ASCII case
	KindIP                   // an IPv4 or IPv6 address
	KindLong                 // an integer
	KindDate                 // a time (Value.N holds Unix nanoseconds)
	KindDuration             // a duration (Value.N holds nanoseconds)
	KindBool                 // "true" or "false" (Value.N 1 or 0)
)

// Value is one value of a field in a record: S for keywords, A for
// addresses, N for the numeric kinds.
type Value struct {
	S string
	A netip.Addr
	N int64
}

// Field is one searchable field: its ECS name and type, a description for
// the console's field help, and how to read its values from a record. The
// same Field serves the query language (match), the index (postings),
// aggregations (top by FIELD) and GET /api/v1/fields.
type Field struct {
	// Name is the ECS field name, as in the record's ECS JSON.
	Name string
	// Type is the ECS type ("keyword", "ip", "long", "date", "boolean").
	Type string
	// Kind says how values compare.
	Kind Kind
	// Description is one line for the field help.
	Description string
	// ID is the field's byte in index keys (0: not indexed). Fields of
	// one kind of value share an ID (every name field, both ends' ports):
	// a record with the same value in two of them gets one posting, and a
	// lookup yields the records with the value in any of them (a superset
	// the query's Match narrows). It is part of the on-disk format: never
	// reuse or renumber one.
	ID byte
	// Suffix: the index also holds the name's domain suffixes (what
	// follows each dot), so that a "*.example.com" pattern is an index
	// lookup too.
	Suffix bool
	get    func(r *flow.Record, dst []Value) []Value
	// indexIf, when set, limits the postings to the values it accepts.
	indexIf func(v Value) bool
}

// Index IDs (see Field.ID).
const (
	idSrcIP       = 1 + iota // source.ip
	idDstIP                  // destination.ip
	idPort                   // destination.port; source.port below 1024
	idName                   // tls.client.server_name, dns.question.name, destination.domain, url.domain
	idCountry                // source and destination country
	idAS                     // source and destination AS number
	idAnswer                 // dns.answers.data
	idFingerprint            // tls.client.ja4, tls.client.ja3
	idPath                   // url.path
	idThreat                 // threat.indicator.name, threat.feed.name
)

// wellKnown keeps the postings of well-known ports only (source ports are
// mostly ephemeral: a posting each would cost more than it finds).
func wellKnown(v Value) bool { return v.N < 1024 }

// Values appends the field's values in r to dst (none when the record
// does not carry the field).
func (f *Field) Values(r *flow.Record, dst []Value) []Value { return f.get(r, dst) }

// Indexed reports whether the field has postings in the index.
func (f *Field) Indexed() bool { return f.ID != 0 }

// Indexes reports whether the index holds the postings of value v of
// the field, so that a lookup of v finds every record with it.
func (f *Field) Indexes(v Value) bool { return f.ID != 0 && (f.indexIf == nil || f.indexIf(v)) }

// Format renders a value as the ECS JSON renders it (text, address,
// number).
func (f *Field) Format(v Value) string {
	switch f.Kind {
	case KindKeyword:
		return v.S
	case KindIP:
		return v.A.String()
	case KindBool:
		if v.N != 0 {
			return "true"
		}
		return "false"
	}
	return strconv.FormatInt(v.N, 10)
}

// Getter helpers.

func str(fn func(r *flow.Record) string) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		if s := fn(r); s != "" {
			dst = append(dst, Value{S: s})
		}
		return dst
	}
}

func num(fn func(r *flow.Record) (int64, bool)) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		if n, ok := fn(r); ok {
			dst = append(dst, Value{N: n})
		}
		return dst
	}
}

func always(fn func(r *flow.Record) int64) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value { return append(dst, Value{N: fn(r)}) }
}

func app(r *flow.Record) *flow.AppMeta {
	if r.App == nil {
		return &flow.AppMeta{}
	}
	return r.App
}

func enr(r *flow.Record) *flow.Enrichment {
	if r.Enrichment == nil {
		return &flow.Enrichment{}
	}
	return r.Enrichment
}

func ipEnd(src bool) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		t := &r.Tuple
		if t.Family != flow.FamilyIPv4 && t.Family != flow.FamilyIPv6 {
			return dst
		}
		a := t.Dst
		if src {
			a = t.Src
		}
		return append(dst, Value{A: a.Netip(t.Family)})
	}
}

func portEnd(src bool) func(*flow.Record, []Value) []Value {
	return num(func(r *flow.Record) (int64, bool) {
		if !flow.HasPorts(r.Tuple.Proto) {
			return 0, false
		}
		if src {
			return int64(r.Tuple.SrcPort), true
		}
		return int64(r.Tuple.DstPort), true
	})
}

func side(r *flow.Record, src bool) *flow.EndpointEnrichment {
	e := enr(r)
	if src {
		return &e.Source
	}
	return &e.Destination
}

func geo(src bool, fn func(g *flow.Geo) string) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if g := side(r, src).Geo; g != nil {
			return fn(g)
		}
		return ""
	})
}

func asset(src bool, fn func(a *flow.Asset) string) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if a := side(r, src).Asset; a != nil {
			return fn(a)
		}
		return ""
	})
}

func threats(fn func(m *flow.ThreatMatch) string) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		for i := range enr(r).Threats {
			if s := fn(&enr(r).Threats[i]); s != "" {
				dst = append(dst, Value{S: s})
			}
		}
		return dst
	}
}

func dnsAnswers(fn func(a *flow.DNSAnswer) string) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		d := app(r).DNS
		if d == nil {
			return dst
		}
		for i := range d.Answers {
			if s := fn(&d.Answers[i]); s != "" {
				dst = append(dst, Value{S: s})
			}
		}
		return dst
	}
}

func levels(r *flow.Record) []flow.Tunnel {
	if r.Tunnels == nil {
		return nil
	}
	return r.Tunnels.Levels
}

func tunnelIPs(src bool) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		for _, l := range levels(r) {
			a := l.Dst
			if src {
				a = l.Src
			}
			dst = append(dst, Value{A: a.Netip(l.Family)})
		}
		return dst
	}
}

func tunnelID(name string) func(*flow.Record, []Value) []Value {
	return func(r *flow.Record, dst []Value) []Value {
		for _, l := range levels(r) {
			if l.HasID && l.Type.IDName() == name {
				dst = append(dst, Value{N: int64(l.ID)})
			}
		}
		return dst
	}
}

func asNumber(src bool) func(*flow.Record, []Value) []Value {
	return num(func(r *flow.Record) (int64, bool) {
		if a := side(r, src).AS; a != nil {
			return int64(a.Number), true
		}
		return 0, false
	})
}

func asOrg(src bool) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if a := side(r, src).AS; a != nil {
			return a.Organization
		}
		return ""
	})
}

func dnsStr(fn func(d *flow.DNSMeta) string) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if d := app(r).DNS; d != nil {
			return fn(d)
		}
		return ""
	})
}

func tlsStr(fn func(t *flow.TLSMeta) string) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if t := app(r).TLS; t != nil {
			return fn(t)
		}
		return ""
	})
}

func httpStr(fn func(h *flow.HTTPMeta) string) func(*flow.Record, []Value) []Value {
	return str(func(r *flow.Record) string {
		if h := app(r).HTTP; h != nil && h.Method != "" {
			return fn(h)
		}
		return ""
	})
}

func tlsVersion(t *flow.TLSMeta) string {
	if t.Cipher == 0 {
		return ""
	}
	_, v := flow.TLSVersionName(t.ServerVersion)
	return v
}

func tlsCipher(t *flow.TLSMeta) string {
	if t.Cipher == 0 {
		return ""
	}
	return tls.CipherSuiteName(t.Cipher)
}

// urlDomain is url.domain: the HTTP Host without its port, as the ECS
// rendering has it.
func urlDomain(h *flow.HTTPMeta) string {
	if host, _, err := net.SplitHostPort(h.Host); err == nil {
		return host
	}
	return h.Host
}

// urlPath is url.path: the request target without scheme, host and query.
func urlPath(h *flow.HTTPMeta) string {
	path := h.URI
	if i := strings.Index(path, "://"); i >= 0 {
		if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
			path = path[i+3+j:]
		} else {
			path = "/"
		}
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}

func boolean(fn func(r *flow.Record) bool) func(*flow.Record, []Value) []Value {
	return always(func(r *flow.Record) int64 {
		if fn(r) {
			return 1
		}
		return 0
	})
}

// registry is every searchable field. Index IDs are part of the on-disk
// format (see Field.ID).
var registry = []*Field{
	{Name: "source.ip", Type: "ip", Kind: KindIP, ID: idSrcIP, Description: "Address of the flow's initiator.", get: ipEnd(true)},
	{Name: "destination.ip", Type: "ip", Kind: KindIP, ID: idDstIP, Description: "Address of the flow's responder.", get: ipEnd(false)},
	{Name: "source.port", Type: "long", Kind: KindLong, ID: idPort, indexIf: wellKnown, Description: "Initiator's port (TCP, UDP, SCTP).", get: portEnd(true)},
	{Name: "destination.port", Type: "long", Kind: KindLong, ID: idPort, Description: "Responder's port (TCP, UDP, SCTP).", get: portEnd(false)},
	{Name: "network.transport", Type: "keyword", Description: "Transport protocol: tcp, udp, icmp, ipv6-icmp, sctp...",
		get: str(func(r *flow.Record) string {
			if r.Tuple.Family == flow.FamilyLink {
				return ""
			}
			return flow.ProtoName(r.Tuple.Proto)
		})},
	{Name: "network.iana_number", Type: "keyword", Description: "IP protocol number.",
		get: str(func(r *flow.Record) string {
			if r.Tuple.Family == flow.FamilyLink {
				return ""
			}
			return strconv.FormatInt(int64(r.Tuple.Proto), 10)
		})},
	{Name: "network.type", Type: "keyword", Description: "ipv4, ipv6 or link.",
		get: str(func(r *flow.Record) string {
			switch r.Tuple.Family {
			case flow.FamilyIPv6:
				return "ipv6"
			case flow.FamilyLink:
				return "link"
			}
			return "ipv4"
		})},
	{Name: "network.community_id", Type: "keyword", Description: "Community ID flow hash (1:...).", get: str(func(r *flow.Record) string { return r.CommunityID })},
	{Name: "network.vlan.id", Type: "keyword", Description: "Outer VLAN ID.",
		get: str(func(r *flow.Record) string {
			if r.Tuple.VLAN == 0 {
				return ""
			}
			return strconv.FormatInt(int64(r.Tuple.VLAN), 10)
		})},
	{Name: "network.packets", Type: "long", Kind: KindLong, Description: "Packets, both directions (alias: packets).",
		get: always(func(r *flow.Record) int64 { return int64(r.Source.Packets + r.Destination.Packets) })},
	{Name: "network.bytes", Type: "long", Kind: KindLong, Description: "Bytes on the wire, both directions (alias: bytes).",
		get: always(func(r *flow.Record) int64 { return int64(r.Source.Bytes + r.Destination.Bytes) })},
	{Name: "source.packets", Type: "long", Kind: KindLong, Description: "Packets the initiator sent.", get: always(func(r *flow.Record) int64 { return int64(r.Source.Packets) })},
	{Name: "source.bytes", Type: "long", Kind: KindLong, Description: "Bytes the initiator sent.", get: always(func(r *flow.Record) int64 { return int64(r.Source.Bytes) })},
	{Name: "destination.packets", Type: "long", Kind: KindLong, Description: "Packets the responder sent.", get: always(func(r *flow.Record) int64 { return int64(r.Destination.Packets) })},
	{Name: "destination.bytes", Type: "long", Kind: KindLong, Description: "Bytes the responder sent.", get: always(func(r *flow.Record) int64 { return int64(r.Destination.Bytes) })},
	{Name: "event.start", Type: "date", Kind: KindDate, Description: "Time of the flow's first packet.", get: always(func(r *flow.Record) int64 { return r.Start.UnixNano() })},
	{Name: "event.end", Type: "date", Kind: KindDate, Description: "Time of the flow's last packet.", get: always(func(r *flow.Record) int64 { return r.End.UnixNano() })},
	{Name: "event.duration", Type: "long", Kind: KindDuration, Description: "Flow duration in nanoseconds; compare with 5s, 2m... (alias: duration).",
		get: always(func(r *flow.Record) int64 { return r.End.Sub(r.Start).Nanoseconds() })},
	{Name: "event.reason", Type: "keyword", Description: "Why the record was emitted: active, fin, rst, idle-timeout...", get: str(func(r *flow.Record) string { return r.Reason.String() })},
	{Name: "tapir.sensor_id", Type: "keyword", Description: "Sensor that saw the flow.", get: str(func(r *flow.Record) string { return r.SensorID })},
	{Name: "tapir.flow_id", Type: "keyword", Description: "tapir flow ID (32 hex digits).", get: str(func(r *flow.Record) string { return r.ID.String() })},
	{Name: "tapir.segment", Type: "long", Kind: KindLong, Description: "Report number of the flow (0 first).", get: always(func(r *flow.Record) int64 { return int64(r.Segment) })},
	{Name: "tapir.final", Type: "boolean", Kind: KindBool, Description: "The flow's final record (it ended).", get: boolean(func(r *flow.Record) bool { return r.Reason.Final() })},
	{Name: "tapir.tunnel_flow", Type: "boolean", Kind: KindBool, Description: "The record of a tunnel's own connection.", get: boolean(func(r *flow.Record) bool { return r.IsTunnelFlow() })},
	{Name: "observer.ingress.interface.name", Type: "keyword", Description: "Capture interface.", get: str(func(r *flow.Record) string { return r.Interface })},
	{Name: "source.geo.country_iso_code", Type: "keyword", ID: idCountry, Description: "Initiator's country (ISO 3166 alpha-2).", get: geo(true, func(g *flow.Geo) string { return g.CountryISOCode })},
	{Name: "destination.geo.country_iso_code", Type: "keyword", ID: idCountry, Description: "Responder's country (ISO 3166 alpha-2).", get: geo(false, func(g *flow.Geo) string { return g.CountryISOCode })},
	{Name: "source.geo.country_name", Type: "keyword", Description: "Initiator's country name.", get: geo(true, func(g *flow.Geo) string { return g.CountryName })},
	{Name: "destination.geo.country_name", Type: "keyword", Description: "Responder's country name.", get: geo(false, func(g *flow.Geo) string { return g.CountryName })},
	{Name: "source.geo.city_name", Type: "keyword", Description: "Initiator's city.", get: geo(true, func(g *flow.Geo) string { return g.CityName })},
	{Name: "destination.geo.city_name", Type: "keyword", Description: "Responder's city.", get: geo(false, func(g *flow.Geo) string { return g.CityName })},
	{Name: "source.geo.name", Type: "keyword", Description: "Site of an internal initiator.", get: geo(true, func(g *flow.Geo) string { return g.Name })},
	{Name: "destination.geo.name", Type: "keyword", Description: "Site of an internal responder.", get: geo(false, func(g *flow.Geo) string { return g.Name })},
	{Name: "source.as.number", Type: "long", Kind: KindLong, ID: idAS, Description: "Initiator's autonomous system number.", get: asNumber(true)},
	{Name: "destination.as.number", Type: "long", Kind: KindLong, ID: idAS, Description: "Responder's autonomous system number.", get: asNumber(false)},
	{Name: "source.as.organization.name", Type: "keyword", Description: "Initiator's AS organization.", get: asOrg(true)},
	{Name: "destination.as.organization.name", Type: "keyword", Description: "Responder's AS organization.", get: asOrg(false)},
	{Name: "destination.domain", Type: "keyword", ID: idName, Suffix: true, Description: "Name the client resolved for the server (passive DNS, SNI, HTTP host or PTR).",
		get: str(func(r *flow.Record) string { return enr(r).Domain })},
	{Name: "tapir.source.asset.name", Type: "keyword", Description: "Asset inventory name of the initiator.", get: asset(true, func(a *flow.Asset) string { return a.Name })},
	{Name: "tapir.destination.asset.name", Type: "keyword", Description: "Asset inventory name of the responder.", get: asset(false, func(a *flow.Asset) string { return a.Name })},
	{Name: "dns.question.name", Type: "keyword", ID: idName, Suffix: true, Description: "DNS query name (no trailing dot).", get: dnsStr(func(d *flow.DNSMeta) string { return d.QueryName })},
	{Name: "dns.question.type", Type: "keyword", Description: "DNS query type (A, AAAA, MX...).", get: dnsStr(func(d *flow.DNSMeta) string { return flow.DNSTypeName(d.QueryType) })},
	{Name: "dns.response_code", Type: "keyword", Description: "DNS response code (NOERROR, NXDOMAIN...).",
		get: dnsStr(func(d *flow.DNSMeta) string {
			if !d.HasResponse {
				return ""
			}
			return flow.DNSRcodeName(d.ResponseCode)
		})},
	{Name: "dns.answers.name", Type: "keyword", Description: "Owner names of the DNS answers.", get: dnsAnswers(func(a *flow.DNSAnswer) string { return a.Name })},
	{Name: "dns.answers.data", Type: "keyword", ID: idAnswer, Description: "Data of the DNS answers (addresses, CNAME targets...).", get: dnsAnswers(func(a *flow.DNSAnswer) string { return a.Data })},
	{Name: "tls.client.server_name", Type: "keyword", ID: idName, Suffix: true, Description: "TLS SNI of the ClientHello.", get: tlsStr(func(t *flow.TLSMeta) string { return t.ServerName })},
	{Name: "tls.client.ja4", Type: "keyword", ID: idFingerprint, Description: "JA4 client fingerprint.", get: tlsStr(func(t *flow.TLSMeta) string { return t.JA4 })},
	{Name: "tls.client.ja3", Type: "keyword", ID: idFingerprint, Description: "JA3 client fingerprint (MD5).", get: tlsStr(func(t *flow.TLSMeta) string { return t.JA3 })},
	{Name: "tls.client.alpn", Type: "keyword", Description: "ALPN protocols the client offered.",
		get: func(r *flow.Record, dst []Value) []Value {
			if t := app(r).TLS; t != nil {
				for _, p := range t.ALPN {
					dst = append(dst, Value{S: p})
				}
			}
			return dst
		}},
	{Name: "tls.version", Type: "keyword", Description: "TLS version the server chose (1.2, 1.3...).", get: tlsStr(tlsVersion)},
	{Name: "tls.cipher", Type: "keyword", Description: "Cipher suite the server chose.", get: tlsStr(tlsCipher)},
	{Name: "tls.next_protocol", Type: "keyword", Description: "ALPN protocol the server chose (TLS 1.2 and below).", get: tlsStr(func(t *flow.TLSMeta) string { return t.NextProtocol })},
	{Name: "http.request.method", Type: "keyword", Description: "HTTP request method.", get: httpStr(func(h *flow.HTTPMeta) string { return h.Method })},
	{Name: "url.domain", Type: "keyword", ID: idName, Suffix: true, Description: "HTTP Host without its port (alias: http.request.host).", get: httpStr(urlDomain)},
	{Name: "url.path", Type: "keyword", ID: idPath, Description: "HTTP request path.", get: httpStr(urlPath)},
	{Name: "url.original", Type: "keyword", Description: "HTTP request target as sent.", get: httpStr(func(h *flow.HTTPMeta) string { return h.URI })},
	{Name: "user_agent.original", Type: "keyword", Description: "HTTP User-Agent.", get: httpStr(func(h *flow.HTTPMeta) string { return h.UserAgent })},
	{Name: "http.response.status_code", Type: "long", Kind: KindLong, Description: "HTTP response status.",
		get: num(func(r *flow.Record) (int64, bool) {
			if h := app(r).HTTP; h != nil && h.StatusCode != 0 {
				return int64(h.StatusCode), true
			}
			return 0, false
		})},
	{Name: "tapir.ssh.client", Type: "keyword", Description: "SSH client identification string.",
		get: str(func(r *flow.Record) string {
			if s := app(r).SSH; s != nil {
				return s.ClientVersion
			}
			return ""
		})},
	{Name: "tapir.ssh.server", Type: "keyword", Description: "SSH server identification string.",
		get: str(func(r *flow.Record) string {
			if s := app(r).SSH; s != nil {
				return s.ServerVersion
			}
			return ""
		})},
	{Name: "threat.indicator.name", Type: "keyword", ID: idThreat, Description: "Threat intelligence indicator the flow matched (any match).", get: threats(func(m *flow.ThreatMatch) string { return m.Indicator })},
	{Name: "threat.indicator.type", Type: "keyword", Description: "Type of a matched indicator (ipv4-addr, domain-name, ja4...).", get: threats(func(m *flow.ThreatMatch) string { return m.Type })},
	{Name: "threat.feed.name", Type: "keyword", ID: idThreat, Description: "Feed of a matched indicator.", get: threats(func(m *flow.ThreatMatch) string { return m.Feed })},
	{Name: "threat.indicator.id", Type: "keyword", Description: "Feed's id of a matched indicator (STIX id).", get: threats(func(m *flow.ThreatMatch) string { return m.ID })},
	{Name: "threat.enrichments.matched.field", Type: "keyword", Description: "Flow field that matched an indicator.", get: threats(func(m *flow.ThreatMatch) string { return m.Field })},
	{Name: "threat.enrichments.matched.atomic", Type: "keyword", Description: "Flow value that matched an indicator.", get: threats(func(m *flow.ThreatMatch) string { return m.Atomic })},
	{Name: "tapir.tunnels.type", Type: "keyword", Description: "Type of a tunnel level the flow was found in (vxlan, gre...).",
		get: func(r *flow.Record, dst []Value) []Value {
			for _, l := range levels(r) {
				dst = append(dst, Value{S: l.Type.String()})
			}
			return dst
		}},
	{Name: "tapir.tunnels.source.ip", Type: "ip", Kind: KindIP, Description: "Outer source address of a tunnel level.", get: tunnelIPs(true)},
	{Name: "tapir.tunnels.destination.ip", Type: "ip", Kind: KindIP, Description: "Outer destination address of a tunnel level.", get: tunnelIPs(false)},
	{Name: "tapir.tunnels.vni", Type: "long", Kind: KindLong, Description: "VXLAN or Geneve VNI of a tunnel level.", get: tunnelID("vni")},
	{Name: "tapir.tunnels.key", Type: "long", Kind: KindLong, Description: "GRE key of a tunnel level.", get: tunnelID("key")},
	{Name: "tapir.tunnels.session_id", Type: "long", Kind: KindLong, Description: "ERSPAN session ID of a tunnel level.", get: tunnelID("session_id")},
	{Name: "tapir.tunnels.teid", Type: "long", Kind: KindLong, Description: "GTP-U TEID of a tunnel level.", get: tunnelID("teid")},
}

// aliases are short names the query language accepts for fields.
var aliases = map[string]string{
	"packets":           "network.packets",
	"bytes":             "network.bytes",
	"duration":          "event.duration",
	"start":             "event.start",
	"end":               "event.end",
	"sni":               "tls.client.server_name",
	"ja4":               "tls.client.ja4",
	"http.request.host": "url.domain",
	"sensor":            "tapir.sensor_id",
	"community_id":      "network.community_id",
}

var byName = func() map[string]*Field {
	m := make(map[string]*Field, len(registry)+len(aliases))
	for _, f := range registry {
		m[f.Name] = f
	}
	for a, n := range aliases {
		m[a] = m[n]
	}
	return m
}()

// ByName returns the field called name (an ECS name or an alias).
func ByName(name string) (*Field, bool) {
	f, ok := byName[strings.ToLower(name)]
	return f, ok
}

// Fields returns every searchable field, sorted by name. The slice is the
// caller's; the fields are shared and must not be modified.
func Fields() []*Field {
	out := append([]*Field(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Aliases returns the short names and the field each stands for.
func Aliases() map[string]string {
	out := make(map[string]string, len(aliases))
	for k, v := range aliases {
		out[k] = v
	}
	return out
}

// indexed are the fields with postings, in registry order.
var indexed = func() []*Field {
	var out []*Field
	kinds := map[byte]Kind{}
	for _, f := range registry {
		if f.ID == 0 {
			continue
		}
		if k, ok := kinds[f.ID]; ok && k != f.Kind || f.ID >= suffixBit {
			panic("flowindex: field ID shared by kinds or too large: " + f.Name)
		}
		kinds[f.ID] = f.Kind
		out = append(out, f)
	}
	return out
}()
