package tapirv1

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
)

// TestEnrichmentRoundTrip: every enrichment field survives the wire.
func TestEnrichmentRoundTrip(t *testing.T) {
	r := flow.Record{Reason: flow.ReasonFIN}
	r.Tuple.Family = flow.FamilyIPv4
	r.Enrichment = &flow.Enrichment{
		Source:      flow.EndpointEnrichment{Asset: &flow.Asset{Name: "pc", Site: "hq", Owner: "it", Role: "ws", Criticality: "low", Internal: true}, Geo: &flow.Geo{Name: "hq"}},
		Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CityName: "X", CountryISOCode: "US", HasLocation: true, Lat: 37.751, Lon: -97.822, Timezone: "America/Chicago"}, AS: &flow.AS{Number: 15169, Organization: "Google LLC"}},
		Domain:      "dns.google", DomainSource: "dns",
		Threats: []flow.ThreatMatch{{Feed: "f", Type: "ipv4-addr", Indicator: "8.8.8.8", Field: "destination.ip", Atomic: "8.8.8.8", Description: "d", Confidence: "80", ID: "indicator--1"}},
		Rarity:  &flow.Rarity{FirstSeen: flow.RarePair | flow.RareDomain, PairCount: 1, ServerPortCount: 3, JA4Count: 2, DomainCount: 1},
	}
	b, err := proto.Marshal(FromRecord(&r, nil))
	if err != nil {
		t.Fatal(err)
	}
	var p FlowRecord
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	var back flow.Record
	if err := ToRecord(&p, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Enrichment, r.Enrichment) {
		t.Fatalf("got %+v\nwant %+v", back.Enrichment, r.Enrichment)
	}
}
