package appmeta

import (
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// BenchmarkExtractor feeds the payload packets of the DNS, TLS, HTTP and
// SSH captures to an Extractor, a fresh flow state per conversation and
// lap, as the sensor does (each flow stops being fed once done).
func BenchmarkExtractor(b *testing.B) {
	var pkts []payloadPacket
	for _, rel := range append(append([]string{"zeek/ssh.pcap", "zeek/get.pcap"}, dnsCaptures...), tlsCaptures...) {
		pkts = append(pkts, readPayloads(b, testenv.Pcap(b, rel))...)
	}
	x, _ := New(DefaultConfig())
	flows := map[string]*Flow{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(pkts)
		if j == 0 {
			clear(flows)
		}
		pp := &pkts[j]
		f := flows[pp.key]
		if f == nil {
			f = x.NewFlow(pp.tcp)
			flows[pp.key] = f
		}
		if !f.Done() && x.Packet(f, pp.fromClient, pp.seq, pp.payload, pp.sport, pp.dport) {
			x.Release(f)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/payload-packet")
}
