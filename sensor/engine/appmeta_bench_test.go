package engine_test

import (
	"testing"

	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// BenchmarkMetadata runs the engine's worker over the packets of every
// shared capture (see loadBenchPackets) with application metadata and
// timelines off, metadata on, and both on, in the same run: the
// difference is their cost per packet.
func BenchmarkMetadata(b *testing.B) {
	pkts := loadBenchPackets(b)
	for _, c := range []struct {
		name           string
		meta, timeline bool
	}{{"off", false, false}, {"metadata", true, false}, {"metadata+timeline", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := engine.DefaultConfig()
			cfg.SensorID = "bench"
			cfg.Metadata.Enabled = c.meta
			cfg.Timeline.Enabled = c.timeline
			src := &memSource{pkts: pkts, span: benchSpan, limit: b.N}
			sink := &countSink{}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNanos()
			e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: sink})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(); err != nil {
				b.Fatal(err)
			}
			if err := e.Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cpuNanos()
			if err := e.Stop(); err != nil {
				b.Fatal(err)
			}
			st := e.Stats()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
			b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/packet")
			b.ReportMetric(float64(st.Metadata.Flows), "meta-flows")
		})
	}
}
