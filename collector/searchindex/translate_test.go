package searchindex

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/collector/searchindex/searchindextest"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, expr string) *query.Query {
	t.Helper()
	q, err := query.Parse(expr, testNow, query.DefaultConfig())
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return q
}

// translated renders the translation of expr's tree (without the window).
func translated(t *testing.T, expr string) string {
	t.Helper()
	dsl, err := Translate(mustParse(t, expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	b, _ := json.Marshal(dsl["bool"].(map[string]any)["must"])
	return string(b)
}

// TestTranslate: each term kind becomes the bool query on the ECS fields
// with the query language's meaning.
func TestTranslate(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"src host 10.0.0.1", `[{"bool":{"must":[{"term":{"source.ip":"10.0.0.1"}}]}}]`},
		{"net 10.0.0.0/8", `[{"bool":{"minimum_should_match":1,"should":[{"term":{"source.ip":"10.0.0.0/8"}},{"term":{"destination.ip":"10.0.0.0/8"}}]}}]`},
		{"src and dst port 53", `[{"bool":{"must":[{"term":{"source.port":53}},{"term":{"destination.port":53}}]}}]`},
		{"dst portrange 1-1023", `[{"bool":{"must":[{"range":{"destination.port":{"gte":1,"lte":1023}}}]}}]`},
		{"icmp", `[{"bool":{"minimum_should_match":1,"should":[{"term":{"network.iana_number":"1"}},{"term":{"network.iana_number":"58"}}]}}]`},
		{"ip6 and not tcp", `[{"bool":{"must":[{"term":{"network.type":"ipv6"}},{"bool":{"must_not":[{"term":{"network.iana_number":"6"}}]}}]}}]`},
		{"vlan 0", `[{"bool":{"must_not":[{"exists":{"field":"tapir.vlan"}}]}}]`},
		{"tunnel vxlan", `[{"term":{"tapir.tunnels.type":"vxlan"}}]`},
		{"sni == *.Example.com", `[{"wildcard":{"tls.client.server_name":{"case_insensitive":true,"value":"*.Example.com"}}}]`},
		{"ja4 == t13d", `[{"term":{"tls.client.ja4":{"case_insensitive":true,"value":"t13d"}}}]`},
		{"url.path == /a?b*", `[{"wildcard":{"url.path":{"case_insensitive":true,"value":"/a\\?b*"}}}]`},
		{"bytes > 1KiB", `[{"range":{"network.bytes":{"gt":1024}}}]`},
		{"duration >= 2s", `[{"range":{"event.duration":{"gte":2000000000}}}]`},
		{"destination.as.number != 15169", `[{"bool":{"must_not":[{"term":{"destination.as.number":15169}}]}}]`},
		{"destination.ip == 192.168.0.0/16", `[{"term":{"destination.ip":"192.168.0.0/16"}}]`},
		{"tapir.tunnel_flow == false", `[{"bool":{"must_not":[{"term":{"tapir.tunnel_flow":true}}]}}]`},
		{"dns.question.name exists", `[{"wildcard":{"dns.question.name":{"value":"?*"}}}]`},
		{"sni == **", `[{"wildcard":{"tls.client.server_name":{"value":"?*"}}}]`},
		{"packets exists", `[{"exists":{"field":"network.packets"}}]`},
		{"event.start < 2024-04-30", `[{"range":{"event.start":{"lt":"2024-04-30T00:00:00Z"}}}]`},
	} {
		if got := translated(t, c.expr); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.expr, got, c.want)
		}
	}
}

// TestTranslateWindow: the query's window becomes the overlap filter the
// store scans with.
func TestTranslateWindow(t *testing.T) {
	dsl, err := Translate(mustParse(t, "after 2024-04-01T00:00:00Z and before 2024-04-02T00:00:00Z and tcp"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(dsl["bool"].(map[string]any)["filter"])
	want := `[{"range":{"event.start":{"lte":"2024-04-02T00:00:00Z"}}},{"range":{"event.end":{"gte":"2024-04-01T00:00:00Z"}}}]`
	if string(b) != want {
		t.Fatalf("window filter %s, want %s", b, want)
	}
}

// TestTranslateRefuses: terms OpenSearch cannot answer with the same
// meaning are errors wrapping ErrUntranslatable, naming the term.
func TestTranslateRefuses(t *testing.T) {
	for _, expr := range []string{"threat.indicator.name == evil", "tcp and threat.feed.name exists", "port 0", "proto 0"} {
		_, err := Translate(mustParse(t, expr))
		if !errors.Is(err, ErrUntranslatable) {
			t.Errorf("%s: %v, want ErrUntranslatable", expr, err)
		}
	}
}

// TestTranslateFieldsMapped: every registry field the translator accepts,
// and every field the terms use, is mapped by the index template with a
// type of its kind (else OpenSearch would find nothing, silently).
func TestTranslateFieldsMapped(t *testing.T) {
	leaves := searchindextest.TemplateLeaves(t)
	want := map[flowindex.Kind][]string{flowindex.KindKeyword: {"keyword"}, flowindex.KindIP: {"ip"},
		flowindex.KindLong: {"long"}, flowindex.KindDate: {"date"}, flowindex.KindDuration: {"long"}, flowindex.KindBool: {"boolean"}}
	for _, f := range flowindex.Fields() {
		if strings.HasPrefix(f.Name, "threat.") {
			continue
		}
		if typ, ok := leaves[f.Name]; !ok || !contains(want[f.Kind], typ) {
			t.Errorf("field %s (kind %d): template maps it as %q", f.Name, f.Kind, typ)
		}
	}
	for f, typ := range map[string]string{"tapir.vlan": "long", "tapir.inner_vlan": "long", "tapir.tunnels.type": "keyword",
		"tapir.tunnels.source.ip": "ip", "tapir.tunnels.destination.ip": "ip", "tapir.tunnels.vni": "long", "tapir.tunnels.key": "long",
		"tapir.tunnels.session_id": "long", "tapir.tunnels.teid": "long", "network.iana_number": "keyword", "network.type": "keyword",
		"source.port": "long", "destination.port": "long", "event.start": "date", "event.end": "date", "tapir.flow_id": "keyword"} {
		if leaves[f] != typ {
			t.Errorf("term field %s: template maps it as %q, want %s", f, leaves[f], typ)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
