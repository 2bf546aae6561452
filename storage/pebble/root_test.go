package pebble

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

func testConfig() Config {
	c := DefaultConfig()
	c.MinFreeBytes = 0
	c.CacheBytes = 8 << 20
	c.MemTableBytes = 4 << 20
	c.ExpireBatchBlocks = 7 // several removal batches per Expire
	return c
}

func openTest(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.BlockStore {
		return openTest(t, t.TempDir(), testConfig())
	})
}
