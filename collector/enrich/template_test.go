package enrich_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// leaves lists the dotted paths of a JSON document's leaves.
func leaves(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			leaves(strings.TrimPrefix(prefix+"."+k, "."), c, out)
		}
	case []any:
		for _, c := range x {
			leaves(prefix, c, out)
		}
	default:
		out[prefix] = true
	}
}

// mapped reports whether a dotted path is mapped in the template.
func mapped(m map[string]any, path string) bool {
	cur := m
	for _, p := range strings.Split(path, ".") {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[p].(map[string]any)
		if !ok {
			return false
		}
		cur = next
	}
	return true
}

// TestTemplateCoversECS: every field of an enriched record and of an
// alert, as ECS JSON, is mapped by both index templates.
func TestTemplateCoversECS(t *testing.T) {
	recs := sensorRecords(t, "zeek/wikipedia.pcap")
	r := recs[0]
	r.Enrichment = &flow.Enrichment{
		Source:      flow.EndpointEnrichment{Asset: &flow.Asset{Name: "pc", Site: "hq", Owner: "it", Role: "ws", Criticality: "low", Internal: true}, Geo: &flow.Geo{Name: "hq", CityName: "c", CountryISOCode: "US", HasLocation: true, Lat: 1, Lon: 2}},
		Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CityName: "X", CountryISOCode: "US", CountryName: "United States", RegionName: "r", ContinentCode: "NA", HasLocation: true, Lat: 37.751, Lon: -97.822, Timezone: "America/Chicago"}, AS: &flow.AS{Number: 15169, Organization: "Google LLC"}},
		Domain:      "dns.google", DomainSource: "dns",
		Threats: []flow.ThreatMatch{{Feed: "f", Type: "domain-name", Indicator: "google", Field: "destination.domain", Atomic: "dns.google", Description: "d", Confidence: "80", ID: "indicator--1"},
			{Feed: "f", Type: "ipv4-addr", Indicator: "8.8.8.8", Field: "destination.ip", Atomic: "8.8.8.8"}},
		Rarity: &flow.Rarity{FirstSeen: flow.RarePair | flow.RareDomain | flow.RareJA4 | flow.RareServerPort, PairCount: 1, ServerPortCount: 3, JA4Count: 2, DomainCount: 1},
	}
	a := enrich.Alert{Rule: "threat-intel", Record: r}
	docs := map[string]bool{}
	for _, v := range []json.Marshaler{&r, &a} {
		b, err := v.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		leaves("", doc, docs)
	}
	for _, f := range []string{"opensearch-template.json", "elasticsearch-template.json"} {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "opensearch", f))
		if err != nil {
			t.Fatal(err)
		}
		var tpl struct {
			Template struct {
				Mappings map[string]any `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(raw, &tpl); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for p := range docs {
			if strings.HasSuffix(p, ".location.lat") || strings.HasSuffix(p, ".location.lon") {
				p = strings.TrimSuffix(strings.TrimSuffix(p, ".lat"), ".lon") // geo_point
			}
			if !mapped(tpl.Template.Mappings, p) {
				t.Errorf("%s: %s not mapped", f, p)
			}
		}
	}
}
