// Package pebble is tapir's embedded storage backend: a storage.BlockStore
// on CockroachDB's Pebble key-value store, in one directory on the
// collector's disk. Every keyspace of storage/rowkey lives in the one
// Pebble keyspace behind its Table byte.
//
// Writes are serialized by one writer lock (Pebble's commit pipeline and
// the fsync dominate anyway); reads run concurrently with writes and with
// each other.
package pebble

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/internal/lograte"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/gate"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/storemetrics"
)

// Errors of this backend (the storage package's sentinels apply too).
var (
	// ErrDiskFull: Write refused a batch because free space fell below
	// Config.MinFreeBytes. Nothing was written; retry after Expire.
	ErrDiskFull = errors.New("pebble store: disk full")
	// ErrFailed: Pebble hit an unrecoverable error (typically a failed
	// WAL write); the store refuses every operation until reopened.
	ErrFailed = errors.New("pebble store: failed")
	// ErrLayout: the store was created with another TimeBucket/LongFlow.
	ErrLayout = errors.New("pebble store: layout differs")
)

// memtableReserve is how many memtables Pebble charges to the block cache
// in steady state (the mutable one and the one kept for reuse).
const memtableReserve = 2

// minL0StopWrites is the fewest L0 sublevels that stop writes (Pebble's
// default).
const minL0StopWrites = 12

// Store is a storage.BlockStore on Pebble. It is safe for concurrent use.
type Store struct {
	dir    string
	cfg    Config
	fs     vfs.FS
	log    *slog.Logger
	m      *storemetrics.Metrics
	layout plan.Layout // TimeBucket and LongFlow

	writeMu   sync.Mutex  // serializes Write and Expire
	rows      sortedBatch // a Write's rows, under writeMu
	dataBytes int64       // under writeMu
	maxSpan   atomic.Int64

	// committing is set while a Write/Expire commit runs, so that a
	// Pebble fatal error raised in that goroutine is turned into an
	// error instead of exiting the process.
	committing atomic.Bool
	failed     atomic.Pointer[error]
	failure    failure

	integrity  *integrityMetrics
	corruptLog *lograte.Limiter // read-path corruption log lines

	reads readStats // what the read path's iterators loaded
	// writeReads counts the rows writes read before writing them
	// (getForWrite).
	writeReads atomic.Uint64
	// prefixSeek: the store uses prefixComparer, so prefix scans seek
	// with SeekPrefixGE and its bloom filters (false: a store created
	// before it, scanned without).
	prefixSeek bool
	// merges: the store uses refMerger, so writes merge flow refs into
	// their flow ID rows instead of reading them first, and Community ID
	// rows hold no value (false: a store created before it).
	merges bool
	// orderedFlowIDs: the store keeps flow ID rows in flow ID order
	// (plan.OrderedFlowIDKey) and short Community ID rows
	// (plan.CommunityHashKey); its merger is orderedRefMerger. Fewer
	// index bytes are rewritten by compactions (false: a store created
	// before it, with salted flow ID rows and full Community ID rows).
	orderedFlowIDs bool
	// comparer and merger are the ones the store was created with
	// (storeRows), which an sstable reader must be given.
	comparer *pebble.Comparer
	merger   *pebble.Merger

	// index is the flow search index's state (search index postings
	// are written in each record's batch; see index.go).
	index      indexState
	search     searchMetrics
	indexReady atomic.Bool

	gate gate.Gate // every operation enters; Close shuts it
	db   *pebble.DB
}

var _ storage.BlockStore = (*Store)(nil)

// fatalPanic carries a Pebble fatal error from Logger.Fatalf to the Write
// or Expire that caused it.
type fatalPanic struct{ err error }

// pebbleLogger routes Pebble's log to slog and turns its fatal errors into
// a failed store rather than os.Exit.
type pebbleLogger struct{ s *Store }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.s.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("%w: %s", ErrFailed, fmt.Sprintf(format, args...))
	l.s.setFailed(err)
	if l.s.committing.Load() {
		panic(fatalPanic{err})
	}
	// A background goroutine (flush, compaction): Pebble must not carry on
	// past a fatal error, and the process must not exit with batches
	// unacknowledged. Stop this goroutine; every store call now fails.
	runtime.Goexit()
}

// Open opens (creating if needed) the store in dir. Metrics are registered
// on reg (nil: not registered).
func Open(dir string, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pebble store config: %w", err)
	}
	m, err := storemetrics.New(reg, "Time to apply one batch, synced.", "Encoded packet block bytes currently stored.")
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, cfg: cfg, fs: cfg.FS, log: cmp.Or(logger, slog.New(slog.DiscardHandler)), m: m,
		layout:  plan.Layout{Bucket: int64(cfg.TimeBucket), Long: int64(cfg.LongFlow)},
		failure: failure{ch: make(chan struct{})}, integrity: newIntegrityMetrics(), corruptLog: lograte.New(10 * time.Second),
		index: newIndexState(), search: newSearchMetrics()}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	comparer, merger, err := storeRows(s.fs, dir)
	if err != nil {
		return nil, err
	}
	s.comparer, s.merger = comparer, merger
	s.prefixSeek = comparer == prefixComparer
	s.merges = merger == refMerger || merger == orderedRefMerger
	s.orderedFlowIDs = merger == orderedRefMerger
	if !s.merges {
		s.log.Info("store created before merged flow refs: each flow written reads its flow ID row first (slower ingest)", "dir", dir)
	}
	if !s.prefixSeek {
		s.log.Info("store created before prefix bloom filters: flow retrievals read every LSM level", "dir", dir)
	}
	opts := s.options(comparer, merger)
	defer opts.Cache.Unref()
	if err := s.checkWAL(); err != nil {
		return nil, err
	}
	db, err := s.openPebble(opts)
	if err != nil {
		if pebble.IsCorruptionError(err) {
			s.integrity.corruption.WithLabelValues("open").Inc()
			err = fmt.Errorf("%w: %w", storage.ErrCorrupt, err)
		}
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	s.db = db
	if err := s.loadMeta(); err != nil {
		_ = db.Close()
		return nil, s.readErr(err, "store metadata")
	}
	if err := s.register(reg); err != nil {
		_ = db.Close()
		return nil, err
	}
	m.DataBytes.Set(float64(s.dataBytes))
	return s, nil
}

// options returns the Pebble options of the store (its Cache holds a
// reference the caller releases once Pebble is open).
func (s *Store) options(cmp *pebble.Comparer, merger *pebble.Merger) *pebble.Options {
	// Pebble charges its memtables to the block cache: the mutable one and
	// the one it keeps for reuse each reserve MemTableBytes of the cache's
	// size. A cache of only CacheBytes (64 MiB by default, two 64 MiB
	// memtables) would then hold no block at all once the memtables have
	// grown to full size, and every index, filter and data block would be
	// read from the files on every retrieval. Size it so that CacheBytes
	// stays for blocks.
	cache := pebble.NewCache(s.cfg.CacheBytes + memtableReserve*s.cfg.MemTableBytes)
	opts := &pebble.Options{
		Comparer:      cmp,
		Merger:        merger,
		FS:            s.fs,
		Cache:         cache,
		MemTableSize:  uint64(s.cfg.MemTableBytes),
		Logger:        pebbleLogger{s},
		EventListener: s.eventListener(),
	}
	opts.EnsureDefaults()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloomPolicy
	}
	opts.L0CompactionThreshold = s.cfg.L0CompactionThreshold
	opts.L0StopWritesThreshold = max(minL0StopWrites, 2*s.cfg.L0CompactionThreshold)
	opts.LBaseMaxBytes = s.cfg.LBaseMaxBytes
	return opts
}

// register registers the store's Pebble and integrity metrics on reg
// (nil: none).
func (s *Store) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range append(append(s.integrity.collectors(), newPebbleCollector(s)), append(s.index.collectors(), s.search.collectors()...)...) {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register pebble metrics: %w", err)
		}
	}
	return nil
}

// openPebble opens Pebble, turning a fatal error it raises while opening
// (a flush or manifest write failing, typically for lack of space) into
// an error rather than a dead goroutine.
func (s *Store) openPebble(opts *pebble.Options) (db *pebble.DB, err error) {
	err = s.guardFatal(func() (err error) {
		db, err = pebble.Open(s.dir, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// acquire checks the store is usable and enters its gate (release
// leaves it).
func (s *Store) acquire() (*pebble.DB, error) {
	if err := s.gate.Enter(); err != nil {
		return nil, err
	}
	if p := s.failed.Load(); p != nil {
		s.gate.Leave()
		return nil, *p
	}
	return s.db, nil
}

func (s *Store) release() { s.gate.Leave() }

// begin starts a read: it fails when ctx is done or the store is closed
// or failed, and otherwise read-locks the store (release ends the read).
func (s *Store) begin(ctx context.Context) (*pebble.DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.acquire()
}

// commit applies wb synced, turning a Pebble fatal error into an error.
func (s *Store) commit(wb *pebble.Batch) error {
	return s.guardFatal(func() error { return wb.Commit(pebble.Sync) })
}

// guardFatal runs fn, during which a Pebble fatal error (Logger.Fatalf)
// panics in this goroutine, and returns that error instead of the panic.
func (s *Store) guardFatal(fn func() error) (err error) {
	s.committing.Store(true)
	defer func() {
		s.committing.Store(false)
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			err = fp.err
		}
	}()
	return fn()
}

// DataBytes returns the encoded block bytes currently stored.
func (s *Store) DataBytes() int64 {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.dataBytes
}

// Close implements storage.BlockStore. It waits for running operations,
// then closes Pebble. It is idempotent; every later call returns
// storage.ErrClosed.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("close pebble: %w", err)
		}
		return nil
	})
}
