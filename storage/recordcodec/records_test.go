package recordcodec_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/engine/enginetest"
)

// captures are the shared captures whose records the tests store: TLS
// 1.3, HTTP, SSH (long sessions: timelines) and DNS over TCP and UDP,
// VLAN tags and link-layer pseudo flows.
var captures = []string{
	"arkime/curl-enabled-tls13.pcap", "zeek/wikipedia.pcap", "zeek/ssh.pcap",
	"arkime/dns-tcp.pcap", "arkime/dns-udp.pcap", "zeek/q-in-q.pcap", "zeek/linuxsll-arp.pcap",
	"zeek/tls-conn-with-extensions.pcap", "zeek/icmp-ping.pcap",
}

var (
	realOnce sync.Once
	realRecs []flow.Record
	realErr  error
)

// realRecords returns the records the sensor engine makes of the shared
// captures (application metadata and timelines set where the traffic
// gives them), with the collector's context added to every third and
// every fifth turned into an exporter's record, so that every part of a
// record is exercised on realistic values. The same slice is returned to
// every caller: do not modify it.
func realRecords(tb testing.TB) []flow.Record {
	tb.Helper()
	paths := make([]string, len(captures))
	for i, rel := range captures {
		paths[i] = testenv.Pcap(tb, rel)
	}
	realOnce.Do(func() {
		for _, p := range paths {
			recs, err := enginetest.Records(p, enginetest.LongFlowConfig())
			if err != nil {
				realErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			realRecs = append(realRecs, recs...)
		}
		for i := range realRecs {
			decorate(i, &realRecs[i])
		}
	})
	if realErr != nil {
		tb.Fatal(realErr)
	}
	return realRecs
}

// decorate adds what only the collector sets: enrichment on every third
// record, an exporter's origin on every fifth.
func decorate(i int, r *flow.Record) {
	if i%3 == 0 {
		r.Enrichment = enrichment(i)
	}
	if i%5 == 0 {
		r.SensorID = flow.ExporterSensorPrefix + "192.0.2.1"
		r.Exported = &flow.Exported{Exporter: "192.0.2.1", Protocol: "ipfix", ObservationDomain: uint32(i),
			InputInterface: 3, OutputInterface: 7, SamplingRate: 100,
			RawSourcePackets: r.Source.Packets / 100, RawSourceBytes: r.Source.Bytes / 100,
			RawDestinationPackets: r.Destination.Packets / 100, RawDestinationBytes: r.Destination.Bytes / 100,
			Biflow: i%2 == 0}
	}
}

// enrichment is what the enrichers would add, varied by i.
func enrichment(i int) *flow.Enrichment {
	e := &flow.Enrichment{
		Source: flow.EndpointEnrichment{Asset: &flow.Asset{Name: "pc-17", Site: "hq", Owner: "it", Role: "workstation", Criticality: "low", Internal: true},
			Geo: &flow.Geo{Name: "hq"}},
		Destination: flow.EndpointEnrichment{Geo: &flow.Geo{CityName: "Ashburn", CountryISOCode: "US", CountryName: "United States",
			RegionName: "Virginia", ContinentCode: "NA", Timezone: "America/New_York", HasLocation: true, Lat: 39.0469, Lon: -77.4903},
			AS: &flow.AS{Number: 14618, Organization: "Amazon.com, Inc."}},
		Domain: "example.org", DomainSource: "dns",
		Rarity: &flow.Rarity{FirstSeen: flow.RarePair | flow.RareJA4, PairCount: 1, ServerPortCount: uint32(i), JA4Count: 1, DomainCount: 9},
	}
	if i%2 == 0 {
		e.Threats = []flow.ThreatMatch{
			{Feed: "abuse.ch", Type: "ipv4-addr", Indicator: "203.0.113.0/24", Field: "destination.ip", Atomic: "203.0.113.9",
				Description: "botnet C2", Confidence: "80", ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},
			{Feed: "local", Type: "domain-name", Indicator: "example.org", Field: "destination.domain", Atomic: "example.org"},
		}
	}
	return e
}
