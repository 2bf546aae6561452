package pebble

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// metaIndex is the meta row saying the flow search index is complete:
// every stored record has its postings. It is written when a store is
// created with the index on and by RebuildIndex, and removed when a
// store is opened with the index off (records written then get none).
var metaIndex = []byte("search_index")

// indexVersion is the posting format the marker names; another version
// means the index must be rebuilt.
const indexVersion = 1

// rebuildBatch is how many records RebuildIndex indexes per batch.
const rebuildBatch = 4096

// indexState is the search index's part of a Store.
type indexState struct {
	// builder builds a batch's postings; used under writeMu.
	builder flowindex.Builder
	// searches counts lookups the index answered, notSelective those it
	// left to a scan; candidates is how many records a lookup yielded,
	// reads how many of them searches read, postingsRead how many
	// posting keys searches read.
	searches, notSelective, reads, postingsRead prometheus.Counter
	candidates                                  prometheus.Histogram
	postings                                    prometheus.Counter
}

func newIndexState() indexState {
	return indexState{builder: flowindex.Builder{Seq: uint64(time.Now().UnixNano())},
		searches: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_lookups_total",
			Help: "Flow searches the search index answered."}),
		notSelective: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_scans_total",
			Help: "Flow searches left to a scan because their index lookup yielded too many records."}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_reads_total",
			Help: "Candidate records flow searches read (a paged search by start time stops at its page)."}),
		postingsRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_postings_read_total",
			Help: "Posting keys flow searches read (a paged search by start time reads the hours of its page)."}),
		candidates: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tapir_pebble_search_index_candidates",
			Help: "Records one index lookup yielded.", Buckets: prometheus.ExponentialBuckets(1, 8, 8)}),
		postings: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_postings_total",
			Help: "Postings written to the search index."}),
	}
}

func (x *indexState) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.searches, x.notSelective, x.reads, x.postingsRead, x.candidates, x.postings}
}

// IndexReady reports whether the flow search index is complete (searches
// use it).
func (s *Store) IndexReady() bool { return s.indexReady.Load() }

// loadIndexMeta sets the index state at open: created is true for a new
// store.
func (s *Store) loadIndexMeta(created bool) error {
	key := rowkey.TableKey(rowkey.TableMeta, metaIndex)
	if !s.cfg.SearchIndex {
		if err := s.db.Delete(key, pebble.Sync); err != nil {
			return fmt.Errorf("clear search index marker: %w", err)
		}
		return nil
	}
	if created {
		if err := s.db.Set(key, []byte{indexVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("write search index marker: %w", err)
		}
		s.indexReady.Store(true)
		return nil
	}
	v, ok, err := s.get(s.db, key)
	if err != nil {
		return fmt.Errorf("read search index marker: %w", err)
	}
	if ok && len(v) == 1 && v[0] == indexVersion {
		s.indexReady.Store(true)
		return nil
	}
	s.log.Warn("flow search index missing or incomplete: searches scan the window until `tapir-collector reindex` rebuilds it",
		"dir", s.dir)
	return nil
}

// addPostings adds r's postings (record row key rk, with its table
// byte) to the batch's when the index is on; writePostings writes them.
// The caller holds writeMu.
func (s *Store) addPostings(r *flow.Record, rk []byte) {
	if s.cfg.SearchIndex {
		s.index.builder.Add(r, rk[1:])
	}
}

// writePostings adds the postings addPostings gathered to wb.
func (s *Store) writePostings(wb rowWriter) error {
	s.index.postings.Add(float64(s.index.builder.Len()))
	return s.index.builder.Flush(func(k, v []byte) error { return wb.Set(k, v, nil) })
}

// RebuildIndex rebuilds the flow search index from the stored records:
// it drops every posting, indexes every record row and then marks the
// index complete. Searches scan meanwhile. It returns how many records it
// indexed. It needs Config.SearchIndex.
func (s *Store) RebuildIndex(ctx context.Context) (int64, error) {
	if !s.cfg.SearchIndex {
		return 0, fmt.Errorf("rebuild search index: the index is off (store.pebble.search_index: false)")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	db, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	s.indexReady.Store(false)
	marker := rowkey.TableKey(rowkey.TableMeta, metaIndex)
	if err := db.Delete(marker, pebble.Sync); err != nil {
		return 0, fmt.Errorf("rebuild search index: %w", err)
	}
	if err := db.DeleteRange([]byte{flowindex.Table}, []byte{flowindex.Table + 1}, pebble.Sync); err != nil {
		return 0, fmt.Errorf("rebuild search index: drop postings: %w", err)
	}
	n, err := s.reindexRecords(ctx, db)
	if err != nil {
		return n, s.readErr(err, "flow records (rebuilding the search index)")
	}
	if err := db.Set(marker, []byte{indexVersion}, pebble.Sync); err != nil {
		return n, fmt.Errorf("rebuild search index: %w", err)
	}
	s.indexReady.Store(true)
	s.log.Info("flow search index rebuilt", "records", n)
	return n, nil
}

// reindexRecords writes the postings of every record row in batches.
func (s *Store) reindexRecords(ctx context.Context, db *pebble.DB) (int64, error) {
	var (
		n  int64
		wb = db.NewBatch()
		r  flow.Record
	)
	lower := []byte{byte(rowkey.TableRecords)}
	err := s.each(ctx, db, lower, []byte{byte(rowkey.TableRecords) + 1}, false, "reindex records", func(k, v []byte) error {
		if err := plan.DecodeRecord(v, &r); err != nil {
			return fmt.Errorf("reindex records: %w", err)
		}
		s.addPostings(&r, k)
		n++
		if n%rebuildBatch != 0 {
			return nil
		}
		if err := s.writePostings(wb); err != nil {
			return err
		}
		if err := wb.Commit(pebble.NoSync); err != nil {
			return err
		}
		wb.Close()
		wb = db.NewBatch()
		return nil
	})
	defer wb.Close()
	if err == nil {
		err = s.writePostings(wb)
	}
	if err != nil {
		return n, err
	}
	return n, wb.Commit(pebble.Sync)
}

// IndexDiskBytes flushes the memtable and returns the estimated bytes on
// disk of the search index's postings and of the flow record rows (for
// benchmarks and capacity planning).
func (s *Store) IndexDiskBytes() (index, records uint64, err error) {
	db, err := s.acquire()
	if err != nil {
		return 0, 0, err
	}
	defer s.release()
	if err := db.Flush(); err != nil {
		return 0, 0, fmt.Errorf("flush: %w", err)
	}
	if index, err = db.EstimateDiskUsage([]byte{flowindex.Table}, []byte{flowindex.Table + 1}); err != nil {
		return 0, 0, err
	}
	records, err = db.EstimateDiskUsage([]byte{byte(rowkey.TableRecords)}, []byte{byte(rowkey.TableRecords) + 1})
	return index, records, err
}
