package pebble

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
)

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkIngestRecords writes flow records of real shapes (DNS and TLS
// names of the shared captures, a day of start times) in synced batches
// of 1000 (TAPIR_INGEST_BATCH records; TAPIR_INGEST_L0,
// TAPIR_INGEST_LBASE_MIB and TAPIR_INGEST_MEMTABLE_MIB set
// Config.L0CompactionThreshold, LBaseMaxBytes and MemTableBytes; the
// collector's defaults otherwise), with the search index on and off. One op is one record.
// flows/s is wall time; flows/cpu-s divides by the process's CPU time
// (Pebble's flushes and compactions included): the rate per core;
// settled-flows/cpu-s also counts the CPU of flushing the last memtable
// and of the compactions the run left owing (the honest steady-state
// figure: a run that stops early leaves compaction work unpaid).
// index-B/record is the postings' size on disk per record after a flush;
// compacted-B/record is what Pebble's compactions wrote per record by the
// end of the run (a measure of their CPU that other load does not skew),
// L0-sublevels how many L0 sublevels were left.
func BenchmarkIngestRecords(b *testing.B) {
	per := 1000
	if n, err := strconv.Atoi(os.Getenv("TAPIR_INGEST_BATCH")); err == nil && n > 0 {
		per = n
	}
	for _, c := range []struct {
		name  string
		index bool
	}{{"index", true}, {"noindex", false}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.SearchIndex = c.index
			def := DefaultConfig() // the collector's sizes, not the tests' small ones
			cfg.CacheBytes, cfg.MemTableBytes = def.CacheBytes, def.MemTableBytes
			if n, err := strconv.Atoi(os.Getenv("TAPIR_INGEST_LBASE_MIB")); err == nil {
				cfg.LBaseMaxBytes = int64(n) << 20
			}
			if n, err := strconv.Atoi(os.Getenv("TAPIR_INGEST_MEMTABLE_MIB")); err == nil {
				cfg.MemTableBytes = int64(n) << 20
			}
			if n, err := strconv.Atoi(os.Getenv("TAPIR_INGEST_L0")); err == nil {
				cfg.L0CompactionThreshold = n
			}
			st := openTest(b, b.TempDir(), cfg)
			defer st.Close()
			g := indextest.New(b, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour, b.N)
			recs := make([]flow.Record, b.N) // generated before the clock starts
			g.Next(recs)
			b.ResetTimer()
			cpu0, t0 := cpuSeconds(), time.Now()
			for i, seq := 0, uint64(1); i < len(recs); i, seq = i+per, seq+1 {
				if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "bench", Seq: seq, Records: recs[i:min(i+per, len(recs))]}); err != nil {
					b.Fatal(err)
				}
			}
			wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/wall, "flows/s")
			b.ReportMetric(float64(b.N)/cpu, "flows/cpu-s")
			settle(b, st)
			b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu0), "settled-flows/cpu-s")
			reportCompaction(b, st)
			if c.index && b.N >= 10000 {
				idx, rec, err := st.IndexDiskBytes()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(idx)/float64(b.N), "index-B/record")
				b.ReportMetric(float64(rec)/float64(b.N), "record-B/record")
			}
		})
	}
}

// settle flushes the memtable and waits until Pebble has run no flush
// and no compaction for a second: the CPU of the work a run left behind
// (which a steady stream would pay as it goes) then counts too.
func settle(b *testing.B, st *Store) {
	if err := st.db.Flush(); err != nil {
		b.Fatal(err)
	}
	var last, quietSince = int64(-1), time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m := st.db.Metrics()
		done := m.Compact.Count + m.Flush.Count
		if m.Compact.NumInProgress > 0 || m.Flush.NumInProgress > 0 || done != last {
			last, quietSince = done, time.Now()
			continue
		}
		if time.Since(quietSince) >= time.Second {
			return
		}
	}
	b.Fatal("Pebble still compacting 2 minutes after the run")
}

// reportCompaction reports the bytes Pebble's compactions wrote per op
// and the L0 sublevels left.
func reportCompaction(b *testing.B, st *Store) {
	m := st.db.Metrics()
	b.ReportMetric(float64(m.Total().BytesCompacted)/float64(b.N), "compacted-B/record")
	b.ReportMetric(float64(m.Levels[0].Sublevels), "L0-sublevels")
}
