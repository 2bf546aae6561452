package ipfix

import (
	"io"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/sensor/ipfix/ipfixtest"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// BenchmarkEncode encodes the final records of a real capture into IPFIX
// messages (the work AddRecord does under its lock); BenchmarkFlowsJSON
// is the baseline: the same records through the ECS JSON output.
func BenchmarkEncode(b *testing.B) {
	recs := ipfixtest.Finals(ipfixtest.SensorRecords(b, "zeek/wikipedia.pcap"))
	cfg := DefaultConfig()
	buf := make([]byte, 0, cfg.MTU)
	e := newEncoder(&cfg, func() []byte { return buf })
	now := time.Now()
	vs := make([]values, len(recs))
	for i := range recs {
		r := &recs[i]
		vs[i] = values{t: &r.Tuple, pkts: r.Source.Packets, octs: r.Source.Bytes, rpkts: r.Destination.Packets,
			rocts: r.Destination.Bytes, start: r.Start, end: r.End, cid: r.CommunityID, id: r.ID}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.add(&vs[i%len(vs)], now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkFlowsJSON(b *testing.B) {
	recs := ipfixtest.Finals(ipfixtest.SensorRecords(b, "zeek/wikipedia.pcap"))
	f := output.NewFlowsJSON(io.Discard, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.AddRecord(&recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
