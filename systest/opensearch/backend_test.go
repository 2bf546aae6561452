package opensearch

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// backendCaptures are replayed for TestSearchBackend: TestSearch's (GeoIP
// and ASN, TLS, HTTP, DNS, VXLAN, ERSPAN, ICMP, SCTP, link-layer pseudo
// flows).
var backendCaptures = searchCaptures

// backendQueries are queries of every term kind, run in each capture's
// window on both backends.
var backendQueries = []string{
	"tcp", "udp", "icmp", "proto 132", "ip", "ip6", "not tcp",
	"port 443", "port 80 or port 53", "src port 53", "dst portrange 1-1023", "portrange 1024-65535",
	"net 10.0.0.0/8", "src net 192.168.0.0/16", "dst net 2001:db8::/32", "src and dst net 0.0.0.0/0",
	"vlan 0", "vlan 100", "tunnel any", "tunnel vxlan", "tunnel gre", "tunnel erspan2", "tunnel erspan3", "not tunnel any",
	"tls.client.server_name exists", "sni == *.gstatic.com", "sni == *WIKIPEDIA*", "tls.client.ja4 exists",
	"destination.geo.country_iso_code == US", "source.geo.country_iso_code != US", "destination.as.number >= 1000",
	"bytes > 1K", "packets >= 10", "duration > 1s", "duration <= 100ms", "network.transport != tcp",
	"dns.question.name exists", "dns.question.name == *", "not tls.client.alpn exists", "url.domain == *.org", "url.path == /*", "http.response.status_code == 200",
	"destination.ip == 10.0.0.0/8", "source.ip > 100.0.0.0", "tapir.final == true", "tapir.tunnel_flow == false", "event.reason == fin",
	"network.iana_number == 6 and destination.port < 1024", "(tcp or udp) and not (port 80 or port 443)",
	"tapir.tunnels.vni exists", "tapir.tunnels.source.ip exists",
}

// apiFlows walks every page (limit per page) of GET /api/v1/flows for
// expr and returns the flow IDs, sorted, and the X-Tapir-Search header.
func (c *collector) apiFlows(t testing.TB, expr string, limit int) (ids []string, how string) {
	t.Helper()
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: more than 1000 pages", expr)
		}
		v := url.Values{"query": {expr}, "limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		code, body, h := c.apiGet(t, "/api/v1/flows?"+v.Encode())
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", expr, code, body)
		}
		how = h.Get("X-Tapir-Search")
		dec := json.NewDecoder(strings.NewReader(body))
		for dec.More() {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			ids = append(ids, flowID(doc))
		}
		if cursor = h.Get("X-Tapir-Next"); cursor == "" {
			break
		}
	}
	sort.Strings(ids)
	return ids, how
}

// apiGet sends an authenticated GET to the collector's API.
func (c *collector) apiGet(t testing.TB, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+c.API+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// restartWithBackend restarts the collector on its data with
// api.search.backend set.
func (c *collector) restartWithBackend(t *testing.T, backend string) {
	t.Helper()
	c.Proc.Stop(30 * time.Second)
	b, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  audit_sync: false\n", "  audit_sync: false\n  search: {backend: "+backend+"}\n", 1)
	if err := os.WriteFile(c.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Start()
}

// windowed restricts expr to a capture's window.
func windowed(t testing.TB, cp capture, expr string) string {
	from, to := cp.window(t)
	return fmt.Sprintf("after %s and before %s and (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339), expr)
}

// TestSearchBackend: GET /api/v1/flows on api.search.backend opensearch
// returns, for queries of every term kind (addresses, nets, ports,
// protocols, VLANs, tunnels, field predicates with wildcards,
// comparisons and exists), the same flows as on the store backend, page
// by page with the opensearch cursor; a query OpenSearch cannot express
// answers 400; histograms and tops agree too; pcaps still come from the
// store.
func TestSearchBackend(t *testing.T) {
	s := startServices(t)
	c := newCollector(t, s, "backend")
	for i, cp := range backendCaptures {
		c.replay(t, testenv.Pcap(t, cp.path), fmt.Sprintf("os-backend-%d", i), nil)
	}
	var all []map[string]any
	for _, cp := range backendCaptures {
		all = append(all, c.flows(t, cp, "")...)
	}
	c.waitIndexed(t, len(latest(all)), 3*time.Minute)

	queries := map[string][]string{}
	for _, cp := range backendCaptures {
		queries[cp.path] = append(append([]string{}, backendQueries...), hostQueries(t, cp, all)...)
	}
	want := map[string][]string{}
	for _, cp := range backendCaptures {
		for _, q := range queries[cp.path] {
			expr := windowed(t, cp, q)
			want[expr], _ = c.apiFlows(t, expr, 100000)
		}
	}
	aggWant := map[string]string{}
	for _, p := range aggregatePaths(t) {
		aggWant[p] = c.apiJSON(t, p)
	}
	c.restartWithBackend(t, "opensearch")

	nonEmpty := 0
	for _, cp := range backendCaptures {
		for _, q := range queries[cp.path] {
			expr := windowed(t, cp, q)
			got, how := c.apiFlows(t, expr, 7)
			if how != "opensearch" {
				t.Fatalf("%s: X-Tapir-Search %q, want opensearch", expr, how)
			}
			if !reflect.DeepEqual(got, want[expr]) {
				t.Errorf("%s: %s: opensearch backend %d flows %v, store backend %d flows %v", cp.path, q, len(got), got, len(want[expr]), want[expr])
			}
			if len(got) > 0 {
				nonEmpty++
			}
		}
	}
	if nonEmpty < 40 {
		t.Errorf("only %d (capture, query) pairs found flows", nonEmpty)
	}
	t.Logf("%d (capture, query) pairs compared, %d with flows", len(want), nonEmpty)

	t.Run("HistogramAndTop", func(t *testing.T) {
		for _, p := range aggregatePaths(t) {
			if got := c.apiJSON(t, p); got != aggWant[p] {
				t.Errorf("%s:\nopensearch backend %s\n     store backend %s", p, got, aggWant[p])
			}
		}
		t.Logf("%d histograms and tops compared", len(aggWant))
	})
	t.Run("Untranslatable", func(t *testing.T) {
		for _, q := range []string{"threat.indicator.name == evil", "tcp and threat.feed.name exists", "port 0"} {
			code, body, _ := c.apiGet(t, "/api/v1/flows?"+url.Values{"query": {windowed(t, backendCaptures[0], q)}}.Encode())
			if code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, code, body)
			}
		}
		code, body, _ := c.apiGet(t, "/api/v1/flows?"+url.Values{"query": {windowed(t, backendCaptures[0], "tcp")}, "sort": {"-bytes"}}.Encode())
		if code != http.StatusBadRequest || !strings.Contains(body, "sorts by start only") {
			t.Errorf("sort -bytes: %d %s, want 400", code, body)
		}
	})
	t.Run("PcapFromStore", func(t *testing.T) { c.checkPcapPivot(t) })
}

// aggregatePaths are the histogram and top requests compared on both
// backends: per capture window, a few queries, top by fields of each kind.
func aggregatePaths(t testing.TB) []string {
	var out []string
	for _, cp := range backendCaptures {
		for _, q := range []string{"ip or ip6", "tcp", "not port 443"} {
			expr := windowed(t, cp, q)
			out = append(out, "/api/v1/flows/histogram?"+url.Values{"query": {expr}, "buckets": {"48"}}.Encode())
			for _, by := range []string{"destination.port", "source.ip", "destination.geo.country_iso_code", "tls.client.server_name",
				"network.transport", "destination.as.number", "tapir.final", "dns.question.name"} {
				for _, order := range []string{"flows", "bytes"} {
					out = append(out, "/api/v1/flows/top?"+url.Values{"query": {expr}, "by": {by}, "n": {"5"}, "order": {order}}.Encode())
				}
			}
		}
	}
	return out
}

// apiJSON GETs a JSON answer and returns it re-encoded (keys sorted).
func (c *collector) apiJSON(t testing.TB, path string) string {
	t.Helper()
	code, body, _ := c.apiGet(t, path)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, code, body)
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// hostQueries are host, src host, dst host, tunnel-host and tunnel-id
// terms on values of a capture's flows.
func hostQueries(t testing.TB, cp capture, all []map[string]any) []string {
	from, to := cp.window(t)
	var out []string
	seen := map[string]bool{}
	add := func(q string) {
		if !seen[q] && len(out) < 12 {
			seen[q] = true
			out = append(out, q)
		}
	}
	for _, r := range all {
		st, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(field(r, "event.start")))
		if st.Before(from) || st.After(to) {
			continue
		}
		if ip, ok := field(r, "source.ip").(string); ok {
			add("src host " + ip)
		}
		if ip, ok := field(r, "destination.ip").(string); ok {
			add("host " + ip)
		}
		if tl, ok := field(r, "tapir.tunnels").([]any); ok && len(tl) > 0 {
			if ip, ok := field(tl[0].(map[string]any), "source.ip").(string); ok {
				add("tunnel-host " + ip)
			}
			for _, k := range []string{"vni", "key", "session_id", "teid"} {
				if n, ok := field(tl[0].(map[string]any), k).(float64); ok {
					add(fmt.Sprintf("tunnel-id %d", int64(n)))
				}
			}
		}
	}
	return out
}
