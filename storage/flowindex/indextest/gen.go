// Package indextest generates flow records for the search index's tests
// and benchmarks from real record shapes: the tuples, packet and byte
// counts and durations of the shared captures' flows, with DNS query
// names and TLS server names drawn from those captures, spread over a
// time range. A few clients, servers and names make most flows (Zipf
// draws), as on a real network.
package indextest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// Captures are the shared captures whose flows give the record shapes.
var Captures = []string{
	"zeek/wikipedia.pcap", "zeek/get.pcap", "gopacket/test_dns.pcap", "arkime/dns-udp.pcap",
	"arkime/curl-enabled-tls13.pcap", "arkime/dns-tcp.pcap",
}

// serverNames are the TLS server names the shared captures carry
// (tshark -Y tls.handshake.extensions_server_name over them).
var serverNames = []string{"ssl.gstatic.com", "ipv6.google.com", "ipv4.google.com", "enabled.tls13.com", "dns.google"}

var (
	countries = []string{"US", "DE", "FR", "NL", "GB", "JP", "BR", "CN", "RU", "IN"}
	ja4s      = []string{"t13d1516h2_8daaf6152771_e5627efa2ab1", "t13d1715h2_5b57614c22b0_3d5424432f57", "t12d1209h2_d34a8e72043a_b39be8c56a14"}
)

// Gen produces records; not safe for concurrent use.
type Gen struct {
	shapes    []flow.Record
	hostNames []string // DNS and TLS names of the captures
	rng       *rand.Rand
	from      time.Time
	span      time.Duration
	total     int
	n         int
	// Variants is how many distinct host labels each real name gets
	// ("a123.wikipedia.org"): real traffic has many more names than a
	// few captures, and the index's selectivity depends on it.
	Variants int
	// Sensors is how many sensor IDs the records spread over.
	Sensors int
	// clients and servers draw the low 16 bits of the initiator's and
	// the responder's addresses: a few hosts make most flows (Zipf), as
	// on a real network.
	clients, servers *rand.Zipf
	// names draws the variant of a name (Zipf over Variants).
	names    *rand.Zipf
	namesMax int
}

// New returns a generator of total records whose starts spread evenly
// over [from, from+span), from the shapes of Captures.
func New(t testing.TB, from time.Time, span time.Duration, total int) *Gen {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	g := &Gen{rng: rng, from: from, span: span, total: total, Variants: 1000, Sensors: 4,
		clients: rand.NewZipf(rng, 1.1, 4, 65535), servers: rand.NewZipf(rng, 1.1, 4, 65535)}
	for _, c := range Captures {
		for i, f := range storagetest.LoadFlows(t, c) {
			in := storagetest.NewInstance(&f, "shape", uint32(i), 0, 1<<20)
			g.shapes = append(g.shapes, in.Record)
		}
		g.hostNames = append(g.hostNames, dnsNames(t, c)...)
	}
	g.hostNames = append(g.hostNames, serverNames...)
	if len(g.shapes) == 0 || len(g.hostNames) == 0 {
		t.Fatalf("indextest: no flows or names in %v", Captures)
	}
	return g
}

// Names returns the real names the records draw from.
func (g *Gen) Names() []string { return g.hostNames }

// Next fills dst with the next records (fewer at the end) and returns
// how many; 0 when all were produced.
func (g *Gen) Next(dst []flow.Record) int {
	k := 0
	for ; k < len(dst) && g.n < g.total; k, g.n = k+1, g.n+1 {
		g.record(&dst[k], g.n)
	}
	return k
}

// Name returns the name a record of variant v and base name i carries.
func (g *Gen) Name(i, v int) string {
	base := g.hostNames[i%len(g.hostNames)]
	if v == 0 {
		return base
	}
	return fmt.Sprintf("h%d.%s", v, base)
}

// record builds record n.
func (g *Gen) record(r *flow.Record, n int) {
	sh := &g.shapes[n%len(g.shapes)]
	*r = *sh
	at := g.from.Add(time.Duration(int64(g.span) / int64(g.total) * int64(n)))
	dur := sh.End.Sub(sh.Start)
	r.Start, r.End = at, at.Add(dur)
	r.SensorID = fmt.Sprintf("sensor-%d", n%g.Sensors)
	r.ID = flow.NewID(at, flow.SensorHash(r.SensorID), uint32(n))
	r.Tuple.Src = g.vary(r.Tuple.Src, r.Tuple.Family, int(g.clients.Uint64()))
	r.Tuple.Dst = g.vary(r.Tuple.Dst, r.Tuple.Family, int(g.servers.Uint64()))
	if flow.HasPorts(r.Tuple.Proto) && r.Tuple.SrcPort > 1024 {
		r.Tuple.SrcPort = uint16(1024 + g.rng.IntN(64000))
	}
	r.CommunityID = flow.CommunityID(0, r.Tuple)
	if g.names == nil || g.namesMax != g.Variants {
		g.names, g.namesMax = rand.NewZipf(g.rng, 1.1, 4, uint64(g.Variants)), g.Variants
	}
	name := g.Name(g.rng.IntN(len(g.hostNames)), int(g.names.Uint64()))
	r.App = &flow.AppMeta{}
	switch {
	case r.Tuple.Proto == flow.ProtoUDP && (r.Tuple.DstPort == 53 || r.Tuple.SrcPort == 53):
		r.App.DNS = &flow.DNSMeta{QueryName: name, QueryType: 1, HasResponse: true,
			Answers: []flow.DNSAnswer{{Name: name, Type: 1, TTL: 60, Data: r.Tuple.Dst.Netip(r.Tuple.Family).String()}}}
	case r.Tuple.Proto == flow.ProtoTCP:
		r.App.TLS = &flow.TLSMeta{ServerName: name, JA4: ja4s[n%len(ja4s)]}
	default:
		r.App = nil
	}
	r.Enrichment = &flow.Enrichment{Domain: name,
		Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CountryISOCode: countries[g.rng.IntN(len(countries))]},
			AS: &flow.AS{Number: uint32(64496 + g.rng.IntN(500))}}}
}

// vary changes the low 16 bits of an address by n, keeping its network.
func (g *Gen) vary(a flow.Addr, family uint8, n int) flow.Addr {
	if family != flow.FamilyIPv4 && family != flow.FamilyIPv6 {
		return a
	}
	a[14], a[15] = byte(n>>8), byte(n)
	return a
}

// Addr returns a record address as netip.
func Addr(r *flow.Record, src bool) netip.Addr {
	if src {
		return r.Tuple.Src.Netip(r.Tuple.Family)
	}
	return r.Tuple.Dst.Netip(r.Tuple.Family)
}

// dnsNames returns the DNS query names of a capture (without the
// trailing dot), once each.
func dnsNames(t testing.TB, rel string) []string {
	link, pkts := testenv.ReadPcap(t, testenv.Pcap(t, rel))
	seen := map[string]bool{}
	var out []string
	for _, pk := range pkts {
		p := gopacket.NewPacket(pk.Data, layers.LinkType(link), gopacket.Default)
		d, ok := p.Layer(layers.LayerTypeDNS).(*layers.DNS)
		if !ok {
			continue
		}
		for _, q := range d.Questions {
			n := strings.TrimSuffix(string(q.Name), ".")
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// CommonDstPort returns the most frequent destination port of recs: a
// broad term for tests of searches that stop at a page.
func CommonDstPort(recs []flow.Record) uint16 {
	n := map[uint16]int{}
	var best uint16
	for i := range recs {
		p := recs[i].Tuple.DstPort
		if n[p]++; n[p] > n[best] {
			best = p
		}
	}
	return best
}
