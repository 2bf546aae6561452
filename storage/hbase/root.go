// Package hbase is tapir's distributed storage backend: a
// storage.BlockStore on Apache HBase (1.x or 2.x) through
// github.com/tsuna/gohbase, with the row layout of storage/rowkey, the same
// bytes the embedded Pebble store keeps.
//
// One table (created if missing, pre-split by the salt byte of the packet
// block rows) holds every keyspace behind its rowkey.Table byte, as the
// Pebble store does. Packet blocks live in family "p" (one cell per block:
// many packets per cell, never a row per packet; optional TTL as a
// retention backstop), everything else in family "i" (compressed).
//
// HBase has no multi-row transactions, so a batch is applied in three
// steps: every row of the batch is written (idempotent puts, concurrently,
// at most Config.Concurrency calls in flight for the whole store; the
// flow index rows are widened with puts whose timestamps order like
// their values, so concurrent batches of the same flow never narrow its
// span and no read is needed: see refs.go; flow records likewise, by
// segment, except long flows' records, merged with check-and-put loops
// so that their long-flow rows move with them: see records.go and
// mergeRecord; an older report never replaces a newer one),
// then the batch's dedupe marker is created with a check-and-put that
// only one writer can win, then the sensor's durable sequence is raised. Write
// reports applied only to the marker's winner and only after every row
// was acknowledged, so a retried or concurrently repeated batch applies
// once and a crash before the marker only leaves rows that the retry
// writes again, byte for byte. Readers may see the rows of a batch whose
// Write has not returned yet (Pebble hides them until its commit).
//
// Store is safe for concurrent use.
package hbase

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsuna/gohbase"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/gate"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
	"github.com/tapir-sensor/tapir/storage/storemetrics"
)

// Errors of this backend (the storage package's sentinels apply too).
var (
	// ErrLayout: the table was created with another TimeBucket/LongFlow.
	ErrLayout = errors.New("hbase store: layout differs")
)

// Meta rows (TableMeta).
var (
	metaLayout  = []byte("layout")   // time bucket ns, long flow ns
	metaMaxSpan = []byte("max_span") // largest Last-First of any block written
)

// Store is a storage.BlockStore on HBase.
type Store struct {
	cfg    Config
	table  []byte
	log    *slog.Logger
	m      *storemetrics.Metrics
	layout plan.Layout // TimeBucket and LongFlow
	client gohbase.Client
	sem    chan struct{} // bounds calls in flight
	// maxSpan caches the store-wide longest block span; it only grows,
	// and ScanBlocks re-reads it from the table.
	maxSpan atomic.Int64
	// seen remembers the value this store last read or wrote at rows it
	// merges with check-and-put (records, counters): the first guess of
	// the next merge, which saves a read when no other writer changed it.
	seen *seenCache
	// refPut remembers what this store made durable in ref rows, so the
	// next batches of a flow put only what widens them.
	refPut *refPutCache

	gate gate.Gate // every operation enters; Close shuts it
}

var _ storage.BlockStore = (*Store)(nil)

// Open connects to the cluster, creates the table if missing (when
// cfg.CreateTable), and checks its layout. Metrics are registered on reg
// (nil: not registered). ctx bounds the set-up.
func Open(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hbase store config: %w", err)
	}
	m, err := storemetrics.New(reg, "Time to apply one batch (every row acknowledged by HBase).", "Encoded packet block bytes stored, as of the last size-based Expire.")
	if err != nil {
		return nil, err
	}
	opts := []gohbase.Option{gohbase.ZookeeperRoot(cfg.ZKRoot), gohbase.FlushInterval(cfg.FlushInterval),
		gohbase.RpcQueueSize(cfg.RPCQueueSize)}
	if cfg.CreateTable {
		if err := ensureTable(ctx, &cfg, opts); err != nil {
			return nil, err
		}
	}
	s := &Store{cfg: cfg, table: []byte(cfg.Table), log: cmp.Or(logger, slog.New(slog.DiscardHandler)), m: m,
		layout: plan.Layout{Bucket: int64(cfg.TimeBucket), Long: int64(cfg.LongFlow)},
		client: gohbase.NewClient(cfg.ZooKeeper, opts...), sem: make(chan struct{}, cfg.Concurrency),
		seen: newSeenCache(seenCacheRows), refPut: newRefPutCache(refPutCacheRows)}
	if err := s.checkLayout(ctx); err != nil {
		s.client.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkLayout(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	want := s.layout.Value()
	key := rowkey.TableKey(rowkey.TableMeta, metaLayout)
	if _, err := s.checkAndPut(ctx, key, familyIndex, want, nil); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	got, _, err := s.get(ctx, key, familyIndex)
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: table %s created with time_bucket/long_flow %x, configured %x", ErrLayout, s.cfg.Table, got, want)
	}
	span, err := s.readMaxSpan(ctx)
	if err != nil {
		return err
	}
	s.maxSpan.Store(span)
	return nil
}

// acquire checks the store is open and enters its gate (release leaves
// it).
func (s *Store) acquire() error { return s.gate.Enter() }

func (s *Store) release() { s.gate.Leave() }

// begin starts an operation: it fails when ctx is done or the store is
// closed, and otherwise returns ctx bounded by OpTimeout and the function
// that ends the operation.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := s.opContext(ctx)
	return ctx, func() { cancel(); s.release() }, nil
}

// opContext bounds one operation by OpTimeout.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

// Close implements storage.BlockStore: it waits for running operations
// and closes the client. It is idempotent; every later call returns
// storage.ErrClosed.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.client.Close()
		return nil
	})
}
