package searchindex

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/collector/searchindex/searchindextest"
	"github.com/tapir-sensor/tapir/flow"
)

// fill sets every field reachable from v (pointers allocated, slices given
// one element) to a value of the kind OpenSearch expects for it: strings
// named ip, address or *_ip an address, other strings a word, numbers 1,
// times a fixed date.
func fill(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), strings.Split(f.Tag.Get("json"), ",")[0])
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), name)
		v.Set(s)
	case reflect.String:
		if name == "ip" || name == "address" || strings.HasSuffix(name, "_ip") {
			v.SetString("192.0.2.1")
		} else {
			v.SetString("x")
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	}
}

// shapes returns one document of every record shape the collector
// publishes: an ECS object with every field set, an enriched record (geo,
// AS, assets, domain, threat matches, rarity) and an alert.
func shapes(t *testing.T) (flows, alerts [][]byte) {
	t.Helper()
	var full flow.ECS
	fill(reflect.ValueOf(&full).Elem(), "")
	full.Extra = nil
	r := flow.Record{ID: flow.NewID(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 1, 2), SensorID: "s", CommunityID: "1:x",
		Start: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)}
	r.Tuple.Family, r.Tuple.Proto = flow.FamilyIPv4, flow.ProtoTCP
	r.Enrichment = &flow.Enrichment{
		Source:      flow.EndpointEnrichment{Asset: &flow.Asset{Name: "pc", Site: "hq", Owner: "it", Role: "ws", Criticality: "low", Internal: true}, Geo: &flow.Geo{Name: "hq", CityName: "c", CountryISOCode: "US", HasLocation: true, Lat: 1, Lon: 2}},
		Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CityName: "X", CountryISOCode: "US", CountryName: "United States", RegionName: "r", ContinentCode: "NA", HasLocation: true, Lat: 37.751, Lon: -97.822, Timezone: "America/Chicago"}, AS: &flow.AS{Number: 15169, Organization: "Google LLC"}},
		Domain:      "dns.google", DomainSource: "dns",
		Threats: []flow.ThreatMatch{{Feed: "f", Type: "domain-name", Indicator: "google", Field: "destination.domain", Atomic: "dns.google", Description: "d", Confidence: "80", ID: "indicator--1"},
			{Feed: "f", Type: "ipv4-addr", Indicator: "8.8.8.8", Field: "destination.ip", Atomic: "8.8.8.8"}},
		Rarity: &flow.Rarity{FirstSeen: flow.RarePair | flow.RareDomain | flow.RareJA4 | flow.RareServerPort, PairCount: 1, ServerPortCount: 3, JA4Count: 2, DomainCount: 1},
	}
	for _, m := range []json.Marshaler{&full, &r} {
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, b)
	}
	a := enrich.Alert{Rule: "threat-intel", Record: r}
	b, err := json.Marshal(a.ECS())
	if err != nil {
		t.Fatal(err)
	}
	return flows, append(alerts, b)
}

// TestShapesMapWithoutSurprises: on the real node, with the template
// deploy/opensearch/setup.sh installed, one document of every record shape
// is accepted through the indexer's bulk path, and the indices' mappings
// afterwards hold no field the template does not declare (no dynamic
// mapping) and no type other than the template's.
func TestShapesMapWithoutSurprises(t *testing.T) {
	base := searchindextest.URL(t)
	tplRaw := searchindextest.ReadTemplate(t)
	searchindextest.MustDo(t, base, "PUT", "/_index_template/tapir", tplRaw, nil)
	suffix := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000000")
	flowsIdx, alertsIdx := "tapir-flows-"+suffix, "tapir-alerts-"+suffix
	t.Cleanup(func() { _, _ = searchindextest.Do(base, "DELETE", "/"+flowsIdx+","+alertsIdx, nil, nil) })

	cfg := DefaultConfig()
	cfg.URLs = []string{base}
	ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: []string{"127.0.0.1:1"}, Topic: "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	if ix.os, err = ix.openSearchClient(); err != nil {
		t.Fatal(err)
	}
	flows, alerts := shapes(t)
	var docs []doc
	for i, b := range flows {
		docs = append(docs, doc{index: flowsIdx, id: "f" + string(rune('0'+i)), version: 1, body: b, rec: &kgo.Record{}})
	}
	for i, b := range alerts {
		docs = append(docs, doc{index: alertsIdx, id: "a" + string(rune('0'+i)), version: 1, body: b, rec: &kgo.Record{}})
	}
	retry, err := ix.bulk(context.Background(), docs)
	if err != nil || len(retry) > 0 {
		t.Fatalf("bulk: %v, %d to retry", err, len(retry))
	}
	for _, reason := range []string{"mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception"} {
		if n := counterValue(t, ix.m.dropped.WithLabelValues(reason)); n != 0 {
			t.Fatalf("%v documents refused (%s)", n, reason)
		}
	}
	if n := counterValue(t, ix.m.docs.WithLabelValues("indexed")); n != float64(len(docs)) {
		t.Fatalf("indexed %v documents, want %d", n, len(docs))
	}
	got := searchindextest.IndexLeaves(t, base, flowsIdx+","+alertsIdx)
	bad := searchindextest.Unexpected(searchindextest.TemplateLeaves(t), got)
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("%d fields mapped otherwise than the template says:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// TestSegmentsNeverGoBack: on the real node, a later segment of a flow
// replaces the earlier one under the same id, an older segment arriving
// afterwards is refused (counted stale) and the same segment again (a
// record read twice) rewrites it: one document, the newest segment.
func TestSegmentsNeverGoBack(t *testing.T) {
	base := searchindextest.URL(t)
	idx := "tapir-flows-segments-" + time.Now().Format("150405.000000")
	t.Cleanup(func() { _, _ = searchindextest.Do(base, "DELETE", "/"+idx, nil, nil) })
	cfg := DefaultConfig()
	cfg.URLs = []string{base}
	ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: []string{"127.0.0.1:1"}, Topic: "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	if ix.os, err = ix.openSearchClient(); err != nil {
		t.Fatal(err)
	}
	seg := func(n uint64) doc {
		return doc{index: idx, id: "flow-1", version: n, body: []byte(`{"tapir":{"flow_id":"flow-1","segment":` + string(rune('0'+n)) + `}}`), rec: &kgo.Record{}}
	}
	for _, n := range []uint64{0, 2, 1, 2} {
		if retry, err := ix.bulk(context.Background(), []doc{seg(n)}); err != nil || len(retry) > 0 {
			t.Fatalf("segment %d: %v, %d to retry", n, err, len(retry))
		}
	}
	if s := counterValue(t, ix.m.docs.WithLabelValues("stale")); s != 1 {
		t.Fatalf("%v stale, want 1 (segment 1 after 2)", s)
	}
	var got struct {
		Version int `json:"_version"`
		Source  struct {
			Tapir struct {
				Segment int `json:"segment"`
			} `json:"tapir"`
		} `json:"_source"`
	}
	searchindextest.MustDo(t, base, "GET", "/"+idx+"/_doc/flow-1", nil, &got)
	if got.Version != 2 || got.Source.Tapir.Segment != 2 {
		t.Fatalf("stored version %d segment %d, want 2 and 2", got.Version, got.Source.Tapir.Segment)
	}
	var cnt struct {
		Count int `json:"count"`
	}
	searchindextest.MustDo(t, base, "POST", "/"+idx+"/_refresh", nil, nil)
	searchindextest.MustDo(t, base, "GET", "/"+idx+"/_count", nil, &cnt)
	if cnt.Count != 1 {
		t.Fatalf("%d documents, want 1", cnt.Count)
	}
}

// TestRetentionOnNode: on the real node, deleteExpired removes the daily
// indices past retention_days and keeps the others (OpenSearch from Maven
// Central has no index-management plugin: the indexer does retention).
func TestRetentionOnNode(t *testing.T) {
	base := searchindextest.URL(t)
	prefix := "tapir-flows-ret" + time.Now().Format("150405000000") + "-"
	t.Cleanup(func() { _, _ = searchindextest.Do(base, "DELETE", "/"+prefix+"*", nil, nil) })
	now := time.Now().UTC()
	old, recent := prefix+now.AddDate(0, 0, -10).Format("2006.01.02"), prefix+now.AddDate(0, 0, -2).Format("2006.01.02")
	for _, idx := range []string{old, recent} {
		searchindextest.MustDo(t, base, "PUT", "/"+idx, nil, nil)
	}
	cfg := DefaultConfig()
	cfg.URLs, cfg.IndexPrefix, cfg.RetentionDays = []string{base}, prefix, 7
	ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: []string{"127.0.0.1:1"}, Topic: "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	if ix.os, err = ix.openSearchClient(); err != nil {
		t.Fatal(err)
	}
	ix.deleteExpired(context.Background(), now)
	if code, _ := searchindextest.Do(base, "HEAD", "/"+old, nil, nil); code != 404 {
		t.Fatalf("%s: %d after retention, want 404", old, code)
	}
	if code, _ := searchindextest.Do(base, "HEAD", "/"+recent, nil, nil); code != 200 {
		t.Fatalf("%s: %d after retention, want 200", recent, code)
	}
	if n := counterValue(t, ix.m.deleted); n != 1 {
		t.Fatalf("deleted counter %v, want 1", n)
	}
}

// TestTemplateCheck: at start the indexer warns when no index template
// matches its indices, and not when deploy/opensearch's template does.
func TestTemplateCheck(t *testing.T) {
	base := searchindextest.URL(t)
	searchindextest.MustDo(t, base, "PUT", "/_index_template/tapir", searchindextest.ReadTemplate(t), nil)
	for prefix, warn := range map[string]bool{"tapir-flows-": false, "nomatch-flows-": true} {
		var logs strings.Builder
		cfg := DefaultConfig()
		cfg.URLs, cfg.IndexPrefix = []string{base}, prefix
		ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: []string{"127.0.0.1:1"}, Topic: "unused"},
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if ix.os, err = ix.openSearchClient(); err != nil {
			t.Fatal(err)
		}
		ix.checkTemplate(context.Background())
		if got := strings.Contains(logs.String(), "no index template matches"); got != warn {
			t.Fatalf("prefix %s: warned %v, want %v:\n%s", prefix, got, warn, logs.String())
		}
	}
}
