package query

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// fieldRecord is a TLS flow with DNS, HTTP, enrichment and tunnel fields.
func fieldRecord() *flow.Record {
	src, _ := flow.AddrFromNetip(netip.MustParseAddr("10.0.0.1"))
	dst, _ := flow.AddrFromNetip(netip.MustParseAddr("93.184.216.34"))
	vx, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.7"))
	start := testNow.Add(-10 * time.Minute)
	return &flow.Record{
		SensorID: "s1", CommunityID: "1:abc=",
		Tuple:  flow.Tuple{Family: flow.FamilyIPv4, Proto: flow.ProtoTCP, Src: src, Dst: dst, SrcPort: 51234, DstPort: 443},
		Source: flow.DirStats{Packets: 10, Bytes: 1500}, Destination: flow.DirStats{Packets: 20, Bytes: 2_000_000},
		Start: start, End: start.Add(7 * time.Second), Reason: flow.ReasonFIN,
		App: &flow.AppMeta{
			TLS:  &flow.TLSMeta{ServerName: "WWW.Example.com", JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", ALPN: []string{"h2", "http/1.1"}},
			DNS:  &flow.DNSMeta{QueryName: "www.example.com", QueryType: 1, HasResponse: true, Answers: []flow.DNSAnswer{{Name: "www.example.com", Type: 1, Data: "93.184.216.34"}}},
			HTTP: &flow.HTTPMeta{Method: "GET", Host: "example.com:8080", URI: "/a/b?c=d", UserAgent: "curl/8.0 (x86_64)"},
		},
		Enrichment: &flow.Enrichment{
			Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CountryISOCode: "US"}, AS: &flow.AS{Number: 15133, Organization: "Edgecast"}},
			Threats:     []flow.ThreatMatch{{Feed: "abuse", Type: "domain-name", Indicator: "example.com"}},
		},
		Tunnels: flow.NewTunnelChain([]flow.Tunnel{{Type: flow.TunnelVXLAN, Family: flow.FamilyIPv4, Proto: flow.ProtoUDP, Src: vx, Dst: vx, HasID: true, ID: 42}}),
	}
}

func TestFieldPredicates(t *testing.T) {
	r := fieldRecord()
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"tls.client.server_name == www.example.com", true}, // ASCII case folded
		{"tls.client.server_name == example.com", false},
		{"tls.client.server_name == *.example.com", true},
		{"tls.client.server_name == www.*", true},
		{"tls.client.server_name == *xampl*", true},
		{"tls.client.server_name == *.example.org", false},
		{"sni != www.example.com", false},
		{"sni=www.example.com", true},
		{`tls.client.ja4 == "t13d1516h2_8daaf6152771_e5627efa2ab1"`, true},
		{"tls.client.alpn == h2", true},
		{"dns.question.name == www.example.com and dns.answers.data == 93.184.216.34", true},
		{"http.request.host == example.com", true},
		{"url.path == /a/b", true},
		{`user_agent.original == "curl/8.0 (x86_64)"`, true},
		{"destination.geo.country_iso_code == us", true},
		{"destination.as.number == 15133", true},
		{"destination.as.number > 20000", false},
		{"threat.indicator.name exists", true},
		{"source.geo.country_iso_code exists", false},
		{"source.geo.country_iso_code != DE", true}, // absent: "!=" matches
		{"tapir.sensor_id == s1 and network.community_id == 1:abc=", true},
		{"tapir.tunnels.vni == 42 and tapir.tunnels.type == vxlan", true},
		{"tapir.tunnels.source.ip == 192.0.2.0/24", true},
		{"destination.ip == 93.184.0.0/16 and source.ip == 10.0.0.1", true},
		{"source.ip < 10.0.0.2", true},
		{"packets > 29 and packets <= 30", true},
		{"bytes > 1MB and bytes < 2MiB", true},
		{"bytes>=2001500", true},
		{"duration >= 5s and duration < 8s", true},
		{"duration > 1m", false},
		{"destination.port == 443 and tcp port 443 and src host 10.0.0.1", true},
		{"not sni == *.example.com or packets > 1000", false},
		{"tapir.final == true and tapir.tunnel_flow == false", true},
		{"event.start >= 2024-05-01", true},
	} {
		q, err := Parse(c.q, testNow, DefaultConfig())
		if err != nil {
			t.Errorf("Parse(%q): %v", c.q, err)
			continue
		}
		if got := q.Match(r); got != c.want {
			t.Errorf("%q matched %v, want %v", c.q, got, c.want)
		}
		q2, err := Parse(q.String(), testNow, DefaultConfig())
		if err != nil || q2.String() != q.String() || q2.Match(r) != c.want {
			t.Errorf("canonical %q of %q: reparse %v", q.String(), c.q, err)
		}
	}
}

func TestFieldPredicateErrors(t *testing.T) {
	for _, s := range []string{
		"sni > example.com",           // text is not ordered
		"packets > many",              // not a number
		"duration > 5",                // a duration needs a unit
		"source.ip == example.com",    // not an address
		"tapir.final == maybe",        // not a boolean
		`sni == "unterminated`,        // open quote
		"sni ==",                      // no value
		"source.ip > 10.0.0.0/8",      // a prefix is for ==
		"no.such.field == 1",          // unknown field
		"event.start > yesterday-ish", // not a time
	} {
		if _, err := Parse(s, testNow, DefaultConfig()); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): %v, want a syntax error", s, err)
		}
	}
}

// TestIndexLookup: the indexable parts of queries compile to lookups,
// the rest to none.
func TestIndexLookup(t *testing.T) {
	for _, c := range []struct {
		q    string
		want string // "" for none
	}{
		{"sni == example.com", "term"},
		{"sni == *.example.com", "suffix"},
		{"sni == www.*", "prefix"},
		{"sni == *xampl*", ""},
		{"url.path == *.php", ""}, // url.path keeps no reversed values
		{"sni == a.com or dns.question.name == a.com", "any"},
		{"sni == a.com or packets > 5", ""},
		{"sni == a.com and packets > 5", "term"},
		{"host 10.0.0.1", "any"},
		{"src host 10.0.0.1 and dst port 53", "all"},
		{"net 10.0.0.0/8", "any"},
		{"not sni == a.com", ""},
		{"tcp", ""},
		{"packets > 5", ""},
		{"sni != a.com", ""},
	} {
		q, err := Parse(c.q, testNow, DefaultConfig())
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.q, err)
		}
		got := ""
		switch l := q.IndexLookup().(type) {
		case flowindex.Term:
			got = "term"
			if l.Prefix && l.Field.Kind == flowindex.KindKeyword {
				got = "prefix"
			}
			if l.Suffix {
				got = "suffix"
			}
		case flowindex.Any:
			got = "any"
		case flowindex.All:
			got = "all"
		}
		if got != c.want {
			t.Errorf("%q: lookup %s, want %s", c.q, got, c.want)
		}
	}
}
