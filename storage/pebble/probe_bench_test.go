package pebble

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/storage"
)

// BenchmarkStoreRetrieval times a flow retrieval's store work (LookupFlow
// by Community ID, then ScanBlocks of each instance) on an existing store,
// such as the one bench/retrieval.sh leaves with KEEP=1:
//
//	TAPIR_BENCH_STORE=.cache/bench/retrieval/store \
//	TAPIR_BENCH_IDS=.cache/bench/retrieval/sample \
//	go test -run '^$' -bench StoreRetrieval -benchtime 1x ./storage/pebble
//
// It compares, on the same store and flows, prefix seeks (SeekPrefixGE and
// the sstables' bloom filters) against plain bounded scans (every level's
// sstable that spans the flow is read), each with a cold and a warm block
// cache, also with a 1 MiB block cache, and reports p50/p99 per flow and the sstable block bytes loaded
// per flow (from files and from the cache). Skipped without the
// variables. The store must not be open in a collector.
func BenchmarkStoreRetrieval(b *testing.B) {
	dir, idsFile := os.Getenv("TAPIR_BENCH_STORE"), os.Getenv("TAPIR_BENCH_IDS")
	if dir == "" || idsFile == "" {
		b.Skip("set TAPIR_BENCH_STORE and TAPIR_BENCH_IDS")
	}
	raw, err := os.ReadFile(idsFile)
	if err != nil {
		b.Fatal(err)
	}
	ids := strings.Fields(string(raw))
	for _, mode := range []struct {
		name   string
		prefix bool
		cache  int64
	}{
		{"prefix-seek", true, DefaultConfig().CacheBytes},
		{"bounded-scan", false, DefaultConfig().CacheBytes},
		// What a store without room for blocks in its cache does (before
		// the memtable reservation was added to the cache size, a busy
		// store's cache held nothing).
		{"prefix-seek-1MiB-cache", true, 1 << 20},
		{"bounded-scan-1MiB-cache", false, 1 << 20},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := openProbeStore(b, dir, mode.cache, mode.prefix)
			defer s.Close()
			b.ResetTimer()
			for range b.N {
				for _, pass := range []string{"cold", "warm"} {
					reportRetrievals(b, s, ids, pass)
				}
			}
		})
	}
}

// openProbeStore opens the store in dir with a cache of cache bytes,
// scanning with prefix seeks or not.
func openProbeStore(b *testing.B, dir string, cache int64, prefix bool) *Store {
	cfg := DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes = cache
	cfg.MemTableBytes = 1 << 20 // reserved in the cache: keep it small
	s, err := Open(dir, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	if !s.prefixSeek && prefix {
		_ = s.Close()
		b.Skip("store created before the prefix comparer")
	}
	s.prefixSeek = prefix
	return s
}

// reportRetrievals retrieves every flow of ids and reports the latency
// percentiles and the bytes read from files and from the cache per flow.
func reportRetrievals(b *testing.B, s *Store, ids []string, pass string) {
	lat := make([]time.Duration, 0, len(ids))
	var files, cached uint64
	for _, id := range ids {
		d, f, c := retrieveOne(b, s, id)
		lat = append(lat, d)
		files += f
		cached += c
	}
	slices.Sort(lat)
	n := float64(len(ids))
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), pass+"-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), pass+"-p99-µs")
	b.ReportMetric(float64(files)/n/1024, pass+"-KiB-files/flow")
	b.ReportMetric(float64(cached)/n/1024, pass+"-KiB-cached/flow")
}

// retrieveOne looks up a flow and scans its blocks as the API does, and
// returns the time it took and the block bytes read from files and from
// the cache.
func retrieveOne(b *testing.B, s *Store, id string) (time.Duration, uint64, uint64) {
	ctx := context.Background()
	r0, c0 := s.reads.blockBytes.Load(), s.reads.blockBytesCached.Load()
	t0 := time.Now()
	refs, err := s.LookupFlow(ctx, id, time.Time{}, time.Time{})
	if err != nil {
		b.Fatalf("lookup %s: %v", id, err)
	}
	n := 0
	for _, r := range refs {
		err := s.ScanBlocks(ctx, r.Key, r.First, r.Last, func(*storage.Block) error { n++; return nil })
		if err != nil {
			b.Fatalf("scan %s: %v", id, err)
		}
	}
	if n == 0 {
		b.Fatalf("%s: no blocks", id)
	}
	d := time.Since(t0)
	r, c := s.reads.blockBytes.Load()-r0, s.reads.blockBytesCached.Load()-c0
	return d, r - c, c
}
