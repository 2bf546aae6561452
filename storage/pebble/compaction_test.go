package pebble

import (
	"context"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
)

// TestL0CompactsManyFlushesAtOnce checks that the store leaves up to
// Config.L0CompactionThreshold overlapping memtable flushes in L0 before
// compacting them (Pebble's default starts at 4): every flush of records
// with their postings spans the keyspace, and each L0 compaction
// rewrites base-level tables across it, so fewer, larger ones write
// less per record.
func TestL0CompactsManyFlushesAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.L0CompactionThreshold = 16
	st := openTest(t, t.TempDir(), cfg)
	defer st.Close()
	const flushes, per = 8, 500
	g := indextest.New(t, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour, flushes*per)
	recs := make([]flow.Record, per)
	for seq := uint64(1); seq <= flushes; seq++ {
		g.Next(recs)
		if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "l0", Seq: seq, Records: recs}); err != nil {
			t.Fatal(err)
		}
		if err := st.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	m := st.db.Metrics()
	if m.Compact.Count > 0 || m.Levels[0].Sublevels < flushes {
		t.Errorf("after %d flushes: %d compactions, %d L0 sublevels; want none, %d",
			flushes, m.Compact.Count, m.Levels[0].Sublevels, flushes)
	}
}
