package publish_test

import (
	"context"
	"testing"

	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/flow"
)

// BenchmarkPublishFlows publishes the flow records of a real capture
// (ECS JSON, zstd, acks=all, idempotent) to the broker of TAPIR_KAFKA in
// calls of one sensor batch each, waiting for Kafka's acknowledgement as
// the collector does. It reports flows/s and the mean record size
// (deploy/kafka/perf-compare.sh hands both to kafka-producer-perf-test).
func BenchmarkPublishFlows(b *testing.B) {
	cfg := kafkatest.Config(b)
	p, err := publish.New(cfg, publish.Dependencies{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	t := &testing.T{}
	base := captureRecords(t)
	// One batch: 1000 records (a busy sensor's 200 ms batch).
	batch := make([]flow.Record, 0, 1000)
	for len(batch) < cap(batch) {
		batch = append(batch, base[len(batch)%len(base)])
	}
	var bytes int
	for i := range batch {
		v, _ := p.EncodeFlow(&batch[i])
		bytes += len(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.PublishFlows(ctx, "bench", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(bytes)/float64(len(batch)), "B/record")
}
