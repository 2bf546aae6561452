package hbase_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/hbase"
	"github.com/tapir-sensor/tapir/storage/hbase/hbasetest"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// TestContract runs the storage contract suite against a real HBase
// (standalone, started by make test): each subtest gets a new table.
func TestContract(t *testing.T) {
	hbasetest.ZooKeeper(t)
	storagetest.Run(t, func(t *testing.T) storage.BlockStore {
		return hbasetest.Open(t, hbasetest.Config(t))
	})
}

// TestLayoutFixedAtCreation: reopening a table with another time bucket
// is refused, with the same one it works and sees the data.
func TestLayoutFixedAtCreation(t *testing.T) {
	cfg := hbasetest.Config(t)
	s := hbasetest.Open(t, cfg)
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	ins := storagetest.Instances(flows[:3], "sensor-a", 0, 2)
	storagetest.WriteInstances(t, s, "sensor-a", ins, 3, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other := cfg
	other.TimeBucket = 2 * time.Minute
	if _, err := hbase.Open(ctx, other, nil, nil); !errors.Is(err, hbase.ErrLayout) {
		t.Fatalf("open with another time bucket: %v, want ErrLayout", err)
	}
	again, err := hbase.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if seq, err := again.DurableSeq(ctx, "sensor-a", 0); err != nil || seq != 1 {
		t.Fatalf("durable seq after reopen: %d %v, want 1", seq, err)
	}
}
