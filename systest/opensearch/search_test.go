package opensearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/searchindex/searchindextest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// capture is a shared capture replayed in TestSearch and the UTC day its
// flows start (a `tapir flows` window: at most 7 days).
type capture struct {
	path, day string
}

// searchCaptures cover the record shapes a sensor sends: public addresses
// (GeoIP country, ASN), TLS (SNI, JA4), HTTP, DNS, VXLAN and ERSPAN
// tunnels, ICMP, SCTP and link-layer pseudo flows.
var searchCaptures = []capture{
	{"zeek/wikipedia.pcap", "2011-03-18"},
	{"zeek/tls-conn-with-extensions.pcap", "2012-04-27"},
	{"zeek/get.pcap", "2013-03-07"},
	{"arkime/curl-enabled-tls13.pcap", "2019-08-07"},
	{"zeek/vxlan.pcap", "2016-07-06"},
	{"arkime/gre-erspan.pcap", "2014-06-14"},
	{"community-id-spec/combined.pcap.gz", "2017-07-14"},
}

// window is a capture's search window: from the day before its first day
// to two days after.
func (cp capture) window(t testing.TB) (from, to time.Time) {
	t.Helper()
	day, err := time.Parse("2006-01-02", cp.day)
	if err != nil {
		t.Fatal(err)
	}
	return day.Add(-24 * time.Hour), day.Add(72 * time.Hour)
}

// flows returns the records `tapir flows` prints for a capture's window
// (JSON objects), with query q when not empty.
func (c *collector) flows(t testing.TB, cp capture, q string) []map[string]any {
	t.Helper()
	from, to := cp.window(t)
	args := []string{"flows", "--json", "--limit", "100000", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	if q != "" {
		args = append(args, "--query", q)
	}
	return e2etest.JSONLines[map[string]any](t, c.tapirCmd(t, args...))
}

// field returns the value at a dotted path of a JSON object (nil when
// absent).
func field(doc map[string]any, path string) any {
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func flowID(doc map[string]any) string { s, _ := field(doc, "tapir.flow_id").(string); return s }

func segment(doc map[string]any) float64 { f, _ := field(doc, "tapir.segment").(float64); return f }

// latest keeps the record with the highest segment of each flow ID.
func latest(recs []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range recs {
		id := flowID(r)
		if prev, ok := out[id]; !ok || segment(r) > segment(prev) {
			out[id] = r
		}
	}
	return out
}

// hit is one search hit.
type hit struct {
	Index  string         `json:"_index"`
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
}

// search runs a query on the collector's indices and returns every hit.
func (c *collector) search(t testing.TB, query map[string]any) []hit {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"size": 10000, "query": query})
	var resp struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	searchindextest.MustDo(t, c.s.os, "POST", "/"+c.prefix+"*/_search", body, &resp)
	return resp.Hits.Hits
}

// searchIn runs a query limited to the flows that started in a capture's
// window.
func (c *collector) searchIn(t testing.TB, cp capture, query map[string]any) []hit {
	t.Helper()
	from, to := cp.window(t)
	return c.search(t, map[string]any{"bool": map[string]any{"must": []any{query}, "filter": []any{
		map[string]any{"range": map[string]any{"event.start": map[string]any{"gte": from.Format(time.RFC3339), "lt": to.Format(time.RFC3339)}}}}}})
}

// count refreshes the collector's indices and counts their documents.
func (c *collector) count(t testing.TB) int {
	t.Helper()
	if code, err := searchindextest.Do(c.s.os, "POST", "/"+c.prefix+"*/_refresh", nil, nil); err != nil || code >= 300 {
		return -1
	}
	var resp struct {
		Count int `json:"count"`
	}
	if code, err := searchindextest.Do(c.s.os, "GET", "/"+c.prefix+"*/_count", nil, &resp); err != nil || code >= 300 {
		return -1
	}
	return resp.Count
}

// waitIndexed waits until the indices hold want documents, the indexer
// shows no lag and its consumer group committed the whole flows topic,
// and the count stays so for a second.
func (c *collector) waitIndexed(t testing.TB, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	stable := 0
	n := 0
	for time.Now().Before(deadline) {
		n = c.count(t)
		if n == want && c.Metric("tapir_searchindex_lag_records", "") == 0 && c.committedAll() {
			if stable++; stable == 3 {
				return
			}
		} else {
			stable = 0
		}
		if n > want {
			break
		}
		time.Sleep(400 * time.Millisecond)
	}
	t.Fatalf("the indices hold %d documents, want %d (indexed %v, stale %v, dropped %v, retries %v):\n%s", n, want,
		c.Metric("tapir_searchindex_documents_total", `result="indexed"`), c.Metric("tapir_searchindex_documents_total", `result="stale"`),
		c.Metric("tapir_searchindex_dropped_total", ""), c.Metric("tapir_searchindex_retries_total", ""),
		e2etest.LastLines(c.Proc.Log.String(), 20))
}

// checkIndexMatchesFlows: the indices hold exactly one document per flow
// instance of recs, under its flow ID, in the daily index of its first
// day, equal to the flow's latest record as `tapir flows` prints it.
func (c *collector) checkIndexMatchesFlows(t *testing.T, recs []map[string]any) {
	t.Helper()
	want := latest(recs)
	hits := c.search(t, map[string]any{"match_all": map[string]any{}})
	if len(hits) != len(want) {
		t.Fatalf("%d documents for %d flow instances", len(hits), len(want))
	}
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.ID] {
			t.Fatalf("flow %s indexed twice", h.ID)
		}
		seen[h.ID] = true
		w, ok := want[h.ID]
		if !ok {
			t.Fatalf("document %s (index %s) is no flow `tapir flows` knows", h.ID, h.Index)
		}
		start, _ := field(w, "event.start").(string)
		if st, err := time.Parse(time.RFC3339Nano, start); err != nil || h.Index != c.prefix+st.UTC().Format("2006.01.02") {
			t.Errorf("flow %s (start %s) in index %s", h.ID, start, h.Index)
		}
		if !reflect.DeepEqual(h.Source, w) {
			g, _ := json.Marshal(h.Source)
			e, _ := json.Marshal(w)
			t.Errorf("flow %s: the document is not its latest record (segment %v, document segment %v):\n got %s\nwant %s",
				h.ID, segment(w), segment(h.Source), g, e)
		}
	}
}

// ids returns the flow IDs of hits.
func hitIDs(hits []hit) []string {
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.ID)
	}
	sort.Strings(out)
	return out
}

// recIDs returns the distinct flow IDs of recs that keep says to keep.
func recIDs(recs []map[string]any, keep func(map[string]any) bool) []string {
	var out []string
	for id, r := range latest(recs) {
		if keep == nil || keep(r) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// anyOf builds a bool query matching value in any of fields.
func anyOf(value any, fields ...string) map[string]any {
	var should []any
	for _, f := range fields {
		should = append(should, map[string]any{"term": map[string]any{f: value}})
	}
	return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}
}

// distinct returns the distinct non-empty values of a field over recs.
func distinct(recs []map[string]any, paths ...string) []any {
	set := map[string]any{}
	for _, r := range recs {
		for _, p := range paths {
			if v := field(r, p); v != nil && v != "" {
				set[fmt.Sprint(v)] = v
			}
		}
	}
	out := make([]any, 0, len(set))
	for _, v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

// fieldSearches are the field searches TestSearch compares: a name and
// the ECS fields a value is looked for in (either of them).
var fieldSearches = []struct {
	name   string
	fields []string
}{
	{"SNI", []string{"tls.client.server_name"}},
	{"JA4", []string{"tls.client.ja4"}},
	{"Country", []string{"source.geo.country_iso_code", "destination.geo.country_iso_code"}},
	{"ASN", []string{"source.as.number", "destination.as.number"}},
}

// predicate is tapir's query for value v in any of fields:
// `f1 == "v" or f2 == "v"`.
func predicate(v any, fields []string) string {
	var terms []string
	for _, f := range fields {
		val := strconv.Quote(fmt.Sprint(v))
		if n, ok := v.(float64); ok {
			val = strconv.FormatInt(int64(n), 10)
		}
		terms = append(terms, f+" == "+val)
	}
	return strings.Join(terms, " or ")
}

// checkFieldSearch: for every distinct value of fields in each capture,
// the flows OpenSearch finds in the capture's window (a term query on
// any of the fields) are the flows `tapir flows --query` finds with the
// field predicate, and the predicate finds at least one flow.
func (c *collector) checkFieldSearch(t *testing.T, perCapture map[string][]map[string]any, fields []string) {
	searched := 0
	for _, cp := range searchCaptures {
		for _, v := range distinct(perCapture[cp.path], fields...) {
			q := predicate(v, fields)
			want := recIDs(c.flows(t, cp, q), nil)
			if len(want) == 0 {
				t.Errorf("%s: tapir flows --query '%s' finds nothing", cp.path, q)
			}
			got := hitIDs(c.searchIn(t, cp, anyOf(v, fields...)))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s: opensearch %v, tapir flows %v", cp.path, q, got, want)
			}
			searched++
		}
	}
	if searched == 0 {
		t.Fatalf("no record carries %v", fields)
	}
	t.Logf("%d (capture, value) pairs of %v searched", searched, fields)
}

// TestSearch replays shared captures through sensor, collector, Kafka and
// the indexer into OpenSearch, then checks the index against `tapir
// flows`, the searches, the pivot to pcap, the installed template and the
// mappings.
func TestSearch(t *testing.T) {
	s := startServices(t)
	c := newCollector(t, s, "search")
	var all []map[string]any
	for i, cp := range searchCaptures {
		c.replay(t, testenv.Pcap(t, cp.path), fmt.Sprintf("os-search-%d", i), nil)
	}
	perCapture := map[string][]map[string]any{}
	for _, cp := range searchCaptures {
		recs := c.flows(t, cp, "")
		if len(recs) == 0 {
			t.Fatalf("tapir flows: nothing for %s", cp.path)
		}
		perCapture[cp.path] = recs
		all = append(all, recs...)
	}
	flowsN := len(latest(all))
	c.waitIndexed(t, flowsN, 3*time.Minute)
	t.Logf("%d flow records (%d flow instances) from %d captures indexed", len(all), flowsN, len(searchCaptures))

	t.Run("OnePerFlowLatestSegment", func(t *testing.T) { c.checkIndexMatchesFlows(t, all) })
	t.Run("NothingDropped", func(t *testing.T) {
		if n := c.Metric("tapir_searchindex_dropped_total", ""); n != 0 {
			t.Fatalf("%v records dropped", n)
		}
	})
	t.Run("IP", func(t *testing.T) {
		for _, cp := range searchCaptures {
			for _, ip := range distinct(perCapture[cp.path], "source.ip", "destination.ip") {
				want := recIDs(c.flows(t, cp, "host "+ip.(string)), nil)
				got := hitIDs(c.searchIn(t, cp, anyOf(ip, "source.ip", "destination.ip")))
				if !reflect.DeepEqual(got, want) {
					t.Errorf("host %s: opensearch %v, tapir flows %v", ip, got, want)
				}
			}
		}
	})
	// Every distinct value of each field in each capture: the flows
	// OpenSearch finds are the flows `tapir flows --query` finds with the
	// field predicate.
	for _, f := range fieldSearches {
		t.Run(f.name, func(t *testing.T) { c.checkFieldSearch(t, perCapture, f.fields) })
	}
	t.Run("PcapFromHit", func(t *testing.T) { c.checkPcapPivot(t) })
	t.Run("TemplateInstalled", func(t *testing.T) { checkTemplateInstalled(t, s.os) })
	t.Run("NoDynamicMappings", func(t *testing.T) {
		got := searchindextest.IndexLeaves(t, s.os, c.prefix+"*")
		if bad := searchindextest.Unexpected(searchindextest.TemplateLeaves(t), got); len(bad) > 0 {
			sort.Strings(bad)
			t.Fatalf("fields mapped otherwise than the template says:\n%s", strings.Join(bad, "\n"))
		}
	})
}

// checkTemplateInstalled: deploy/opensearch/start.sh installed the index
// template, with the file's mappings, and it applies to the flow indices.
func checkTemplateInstalled(t *testing.T, base string) {
	var got struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
				Template      struct {
					Mappings map[string]any `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	searchindextest.MustDo(t, base, "GET", "/_index_template/tapir", nil, &got)
	if len(got.IndexTemplates) != 1 {
		t.Fatalf("%d templates named tapir", len(got.IndexTemplates))
	}
	var file struct {
		IndexPatterns []string `json:"index_patterns"`
		Template      struct {
			Mappings map[string]any `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(searchindextest.ReadTemplate(t), &file); err != nil {
		t.Fatal(err)
	}
	it := got.IndexTemplates[0].IndexTemplate
	if !reflect.DeepEqual(it.IndexPatterns, file.IndexPatterns) {
		t.Fatalf("installed patterns %v, file %v", it.IndexPatterns, file.IndexPatterns)
	}
	inst := map[string]string{}
	searchindextest.MappedLeaves("", it.Template.Mappings["properties"].(map[string]any), inst)
	if want := searchindextest.TemplateLeaves(t); !reflect.DeepEqual(inst, want) {
		t.Fatalf("installed template maps %d fields, the file %d", len(inst), len(want))
	}
}

// checkPcapPivot: for flows found in OpenSearch, `tapir pcap --flow
// <community id of the hit>` returns exactly the capture's packets with
// that Community ID (tshark's), timestamps and bytes.
func (c *collector) checkPcapPivot(t *testing.T) {
	testenv.Tool(t, "tshark")
	for _, q := range []struct {
		capture capture
		query   map[string]any
	}{
		{searchCaptures[1], map[string]any{"term": map[string]any{"tls.client.server_name": "ssl.gstatic.com"}}},
		{searchCaptures[3], map[string]any{"term": map[string]any{"tls.client.server_name": "enabled.tls13.com"}}},
		{searchCaptures[0], map[string]any{"bool": map[string]any{"must": []any{
			map[string]any{"term": map[string]any{"destination.geo.country_iso_code": "US"}},
			map[string]any{"term": map[string]any{"network.transport": "tcp"}}}}}},
		{searchCaptures[2], map[string]any{"term": map[string]any{"destination.port": 80}}},
	} {
		hits := c.searchIn(t, q.capture, q.query)
		if len(hits) == 0 {
			t.Fatalf("%s: no hit for %v", q.capture, q.query)
		}
		cid, _ := field(hits[0].Source, "network.community_id").(string)
		if cid == "" {
			t.Fatalf("%s: hit %s has no community id", q.capture, hits[0].ID)
		}
		out := filepath.Join(t.TempDir(), "flow.pcap")
		c.tapirCmd(t, "pcap", "--flow", cid, "-o", out)
		got := readPackets(t, out)
		want := tsharkPackets(t, testenv.Plain(t, testenv.Pcap(t, q.capture.path)), cid)
		if len(want) == 0 {
			t.Fatalf("%s: tshark finds no packet with community id %s", q.capture, cid)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: tapir pcap gave %d packets, the capture has %d with that community id (or they differ)", q.capture, cid, len(got), len(want))
		}
	}
}

// packet is a packet's time and bytes.
type packet struct {
	ts   int64
	data string
}

func readPackets(t *testing.T, path string) []packet {
	t.Helper()
	_, pkts := testenv.ReadPcap(t, path)
	out := make([]packet, len(pkts))
	for i, p := range pkts {
		out[i] = packet{p.Info.Timestamp.UnixMicro(), string(p.Data)}
	}
	return out
}

// tsharkPackets extracts the capture's packets with Community ID cid with
// tshark.
func tsharkPackets(t *testing.T, capture, cid string) []packet {
	t.Helper()
	out := filepath.Join(t.TempDir(), "want.pcap")
	cmd := exec.Command("tshark", "-r", capture, "--enable-protocol", "communityid", "-Y", fmt.Sprintf("communityid == %q", cid), "-F", "pcap", "-w", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	return readPackets(t, out)
}
