package pebble

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// TestSplitKeyOrder checks Pebble's requirements on Comparer.Split on the
// row keys of a real capture's flows: the prefix is a byte prefix, and
// keys in byte order have prefixes in byte order.
func TestSplitKeyOrder(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	ins := storagetest.Instances(flows, "s1", 0, 3)
	var keys [][]byte
	for _, in := range ins {
		for _, b := range in.Blocks {
			m := &b.Meta
			bk := rowkey.BlockKey{Key: m.Key, Bucket: rowkey.Bucket(m.First, int64(time.Minute)), First: m.First,
				Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
			row := rowkey.AppendBlockKey(nil, &bk)
			keys = append(keys, rowkey.TableKey(rowkey.TableBlocks, row), rowkey.TableKey(rowkey.TableBlockAge, rowkey.AppendAgeKey(nil, m.Last, row)))
			// The scan bounds ScanBlocks builds: prefix, prefix + bucket.
			p := rowkey.AppendFlowPrefix([]byte{byte(rowkey.TableBlocks)}, &m.Key)
			keys = append(keys, p, rowkey.AppendTime(slices.Clip(p), bk.Bucket))
		}
		cid, ok := rowkey.ParseCommunityID(in.Record.CommunityID)
		if !ok {
			t.Fatalf("community id %q", in.Record.CommunityID)
		}
		keys = append(keys, rowkey.TableKey(rowkey.TableCommunity, rowkey.AppendCommunityKey(nil, &cid, in.ID)),
			rowkey.TableKey(rowkey.TableCommunity, cid[:]), rowkey.TableKey(rowkey.TableFlowID, rowkey.AppendFlowIDKey(nil, in.ID)))
	}
	keys = append(keys, []byte{byte(rowkey.TableBlocks)}, []byte{byte(rowkey.TableCommunity)}, rowkey.TableKey(rowkey.TableMeta, metaLayout))
	slices.SortFunc(keys, bytes.Compare)
	for i, k := range keys {
		n := splitKey(k)
		if n < 1 || n > len(k) {
			t.Fatalf("split(%x) = %d", k, n)
		}
		if i > 0 {
			p, q := keys[i-1][:splitKey(keys[i-1])], k[:n]
			if bytes.Compare(p, q) > 0 {
				t.Fatalf("keys %x <= %x but prefixes %x > %x", keys[i-1], k, p, q)
			}
		}
	}
	if got := splitKey(keys[len(keys)-1]); got == 0 {
		t.Fatal("empty prefix")
	}
}

// lsmStore writes the capture's flows so that each flow's blocks sit in
// several LSM levels and sstables: sensor s1's first half compacted to
// the bottom level, its second half and sensor s2 (every flow again, an
// hour later) in separate L0 sstables. It returns the instances.
func lsmStore(t *testing.T, s *Store) (s1, s2 []*storagetest.Instance) {
	t.Helper()
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	s1 = storagetest.Instances(flows, "s1", 0, 4)
	s2 = storagetest.Instances(flows, "s2", time.Hour, 4)
	half := len(s1) / 2
	seq := storagetest.WriteInstances(t, s, "s1", s1[:half], 8, 1)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact([]byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	storagetest.WriteInstances(t, s, "s1", s1[half:], 8, seq)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	storagetest.WriteInstances(t, s, "s2", s2, 8, 1)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	return s1, s2
}

// checkRetrieval checks, for every flow, that the Community ID finds both
// instances and that a block scan returns exactly their blocks in time
// order, whole and within a window that holds only the s2 instance.
func checkRetrieval(t *testing.T, s *Store, s1, s2 []*storagetest.Instance) {
	t.Helper()
	ctx := context.Background()
	for i := range s1 {
		a, b := s1[i], s2[i]
		refs, err := s.LookupFlow(ctx, a.Record.CommunityID, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("lookup %s: %v", a.Record.CommunityID, err)
		}
		var ids []flow.ID
		for _, r := range refs {
			ids = append(ids, r.FlowID)
		}
		for _, want := range []flow.ID{a.ID, b.ID} {
			if !slices.Contains(ids, want) {
				t.Fatalf("lookup %s: flow IDs %v miss %v", a.Record.CommunityID, ids, want)
			}
		}
		for _, w := range []struct {
			from, to time.Time
			want     []storage.Block
		}{
			{time.Time{}, time.Time{}, append(slices.Clone(a.Blocks), b.Blocks...)},
			{b.Record.Start, b.Record.End, b.Blocks},
		} {
			var got []storage.Block
			err := s.ScanBlocks(ctx, a.Flow.Key, w.from, w.to, func(blk *storage.Block) error {
				got = append(got, storage.Block{Meta: blk.Meta, Encoded: bytes.Clone(blk.Encoded)})
				return nil
			})
			if err != nil {
				t.Fatalf("scan %v: %v", a.Flow.Key, err)
			}
			if len(got) != len(w.want) {
				t.Fatalf("scan %v [%v, %v]: %d blocks, want %d", a.Flow.Key, w.from, w.to, len(got), len(w.want))
			}
			for j := range got {
				if j > 0 && got[j].Meta.First < got[j-1].Meta.First {
					t.Fatalf("scan %v: blocks out of time order", a.Flow.Key)
				}
				k := slices.IndexFunc(w.want, func(x storage.Block) bool { return bytes.Equal(x.Encoded, got[j].Encoded) })
				if k < 0 || w.want[k].Meta != got[j].Meta {
					t.Fatalf("scan %v: block %+v not written", a.Flow.Key, got[j].Meta)
				}
			}
		}
	}
}

// TestPrefixScanAcrossLevels: with the prefix comparer, retrievals find
// every block of every flow across LSM levels and sstables, and the bloom
// filters skip sstables that do not hold the flow.
func TestPrefixScanAcrossLevels(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	if !s.prefixSeek {
		t.Fatal("a new store does not use the prefix comparer")
	}
	s1, s2 := lsmStore(t, s)
	m, _ := s.Metrics()
	if m.Levels[0].NumFiles < 2 || m.Levels[6].NumFiles < 1 {
		t.Fatalf("LSM not spread over levels: L0 %d files, L6 %d", m.Levels[0].NumFiles, m.Levels[6].NumFiles)
	}
	before := m.Filter.Hits
	checkRetrieval(t, s, s1, s2)
	m, _ = s.Metrics()
	if m.Filter.Hits <= before {
		t.Errorf("no sstable skipped by its bloom filter (hits %d -> %d)", before, m.Filter.Hits)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, testConfig())
	defer s.Close()
	if !s.prefixSeek {
		t.Fatal("reopened store lost the prefix comparer")
	}
	checkRetrieval(t, s, s1, s2)
}

// TestLegacyComparerStore: a store created with Pebble's default
// comparer (before prefix filters) opens with it, and retrievals scan it
// without prefix seeks and find everything.
func TestLegacyComparerStore(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, testConfig())
	defer s.Close()
	if s.prefixSeek {
		t.Fatal("store created with the default comparer opened with the prefix comparer")
	}
	s1, s2 := lsmStore(t, s)
	checkRetrieval(t, s, s1, s2)
}

// TestBlockCacheHoldsBlocks: once the memtables have grown to full size
// (they are charged to the block cache), a second retrieval of the same
// flows finds most of its blocks in the cache.
func TestBlockCacheHoldsBlocks(t *testing.T) {
	cfg := testConfig()
	cfg.CacheBytes = 4 << 20
	cfg.MemTableBytes = 2 << 20
	s, err := Open(t.TempDir(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Grow the memtables to MemTableBytes: Pebble starts them at 256 KiB
	// and doubles them each time one fills up.
	junk := make([]byte, 64<<10)
	for i := range 256 {
		if err := s.db.Set([]byte{byte(rowkey.TableMeta), 'x', byte(i)}, junk, nil); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2 := lsmStore(t, s)
	checkRetrieval(t, s, s1, s2)
	r0, c0 := s.reads.blockBytes.Load(), s.reads.blockBytesCached.Load()
	checkRetrieval(t, s, s1, s2)
	r, c := s.reads.blockBytes.Load()-r0, s.reads.blockBytesCached.Load()-c0
	if r == 0 || c < r/2 {
		t.Errorf("second pass: %d of %d block bytes from the cache", c, r)
	}
}
