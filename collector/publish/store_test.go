package publish_test

import (
	"context"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/pebble"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// TestWrapStoreKafkaFirst: while Kafka does not answer, a batch is not
// written to the store and the durable seq (what a reconnecting sensor is
// told) does not move, so the sensor resends the batch and its flows.
func TestWrapStoreKafkaFirst(t *testing.T) {
	inner, err := pebble.Open(t.TempDir(), pebble.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	cfg := publish.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.Timeout = 2 * time.Second
	p := start(t, cfg)
	s := p.WrapStore(inner)
	in := storagetest.Instances(storagetest.LoadFlows(t, storagetest.Capture)[:2], "sensor-a", 0, 2)
	b := &storage.Batch{SensorID: "sensor-a", Seq: 1, Blocks: in[0].Blocks, Records: []flow.Record{in[0].Record}}
	ctx := context.Background()
	if ok, err := s.Write(ctx, b); ok || err == nil {
		t.Fatalf("write with Kafka down: applied=%v err=%v", ok, err)
	}
	if seq, err := inner.DurableSeq(ctx, "sensor-a", 0); err != nil || seq != 0 {
		t.Fatalf("durable seq %d (%v) after a failed publish, want 0", seq, err)
	}
	// A batch without flow records needs no Kafka.
	b2 := &storage.Batch{SensorID: "sensor-a", Seq: 2, Blocks: in[1].Blocks}
	if ok, err := s.Write(ctx, b2); !ok || err != nil {
		t.Fatalf("blocks-only write: %v %v", ok, err)
	}
}
