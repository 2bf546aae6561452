package flowinput

import (
	"testing"
	"time"
)

// BenchmarkDecodeIPFIX replays softflowd's IPFIX datagrams for the
// shared echo-connections capture through the decoder (goflow2 decoding
// plus conversion to flow records with Community IDs) and reports
// records per second on one core. bench-compare.sh runs goflow2's own
// collector on the same datagrams beside it.
func BenchmarkDecodeIPFIX(b *testing.B) {
	dgs := recorded(b, "softflowd-echo-v10.bin")
	d := testDecoder()
	for _, dg := range dgs { // learn templates
		if _, err := d.Decode(loopback, ProtoNetFlow, dg, time.Now(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	now := time.Now()
	for i := 0; i < b.N; i++ {
		recs, _ := d.Decode(loopback, ProtoNetFlow, dgs[i%len(dgs)], now, nil)
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
