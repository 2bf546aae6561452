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
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/lograte"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
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

// Meta rows (TableMeta).
var (
	metaLayout    = []byte("layout")     // time bucket ns, long flow ns
	metaDataBytes = []byte("data_bytes") // sum of len(Encoded) of kept blocks
	metaMaxSpan   = []byte("max_span")   // largest Last-First of any block written
)

// Store is a storage.BlockStore on Pebble. It is safe for concurrent use.
type Store struct {
	dir    string
	cfg    Config
	fs     vfs.FS
	log    *slog.Logger
	m      *storemetrics.Metrics
	bucket int64 // TimeBucket in ns
	long   int64 // LongFlow in ns

	writeMu   sync.Mutex // serializes Write and Expire
	dataBytes int64      // under writeMu
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
	// prefixSeek: the store uses prefixComparer, so prefix scans seek
	// with SeekPrefixGE and its bloom filters (false: a store created
	// before it, scanned without).
	prefixSeek bool

	state  sync.RWMutex // write-locked by Close; read-locked by every operation
	closed bool
	db     *pebble.DB
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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := storemetrics.New(reg, "Time to apply one batch, synced.", "Encoded packet block bytes currently stored.")
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, cfg: cfg, fs: cfg.FS, log: logger, m: m,
		bucket: int64(cfg.TimeBucket), long: int64(cfg.LongFlow),
		failure: failure{ch: make(chan struct{})}, integrity: newIntegrityMetrics(), corruptLog: lograte.New(10 * time.Second)}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	cmp, err := storeComparer(s.fs, dir)
	if err != nil {
		return nil, err
	}
	s.prefixSeek = cmp == prefixComparer
	if !s.prefixSeek {
		logger.Info("store created before prefix bloom filters: flow retrievals read every LSM level", "dir", dir)
	}
	// Pebble charges its memtables to the block cache: the mutable one and
	// the one it keeps for reuse each reserve MemTableBytes of the cache's
	// size. A cache of only CacheBytes (64 MiB by default, two 32 MiB
	// memtables) would then hold no block at all once the memtables have
	// grown to full size, and every index, filter and data block would be
	// read from the files on every retrieval. Size it so that CacheBytes
	// stays for blocks.
	cache := pebble.NewCache(cfg.CacheBytes + memtableReserve*cfg.MemTableBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Comparer:      cmp,
		FS:            s.fs,
		Cache:         cache,
		MemTableSize:  uint64(cfg.MemTableBytes),
		Logger:        pebbleLogger{s},
		EventListener: s.eventListener(),
	}
	opts.EnsureDefaults()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloomPolicy
	}
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
	if reg != nil {
		for _, c := range append(s.integrity.collectors(), newPebbleCollector(s)) {
			if err := reg.Register(c); err != nil {
				_ = db.Close()
				return nil, fmt.Errorf("register pebble metrics: %w", err)
			}
		}
	}
	m.DataBytes.Set(float64(s.dataBytes))
	return s, nil
}

// openPebble opens Pebble, turning a fatal error it raises while opening
// (a flush or manifest write failing, typically for lack of space) into
// an error rather than a dead goroutine.
func (s *Store) openPebble(opts *pebble.Options) (db *pebble.DB, err error) {
	s.committing.Store(true)
	defer func() {
		s.committing.Store(false)
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			db, err = nil, fp.err
		}
	}()
	return pebble.Open(s.dir, opts)
}

func (s *Store) loadMeta() error {
	want := rowkey.AppendUint64(rowkey.AppendUint64(nil, uint64(s.bucket)), uint64(s.long))
	got, ok, err := s.get(s.db, tkey(rowkey.TableMeta, metaLayout))
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	if !ok {
		if err := s.db.Set(tkey(rowkey.TableMeta, metaLayout), want, pebble.Sync); err != nil {
			return fmt.Errorf("write layout: %w", err)
		}
	} else if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: created with time_bucket/long_flow %x, configured %x", ErrLayout, got, want)
	}
	for _, c := range []struct {
		key []byte
		dst *int64
	}{{metaDataBytes, &s.dataBytes}} {
		if err := s.getInt(s.db, tkey(rowkey.TableMeta, c.key), c.dst); err != nil {
			return err
		}
	}
	var span int64
	if err := s.getInt(s.db, tkey(rowkey.TableMeta, metaMaxSpan), &span); err != nil {
		return err
	}
	s.maxSpan.Store(span)
	return nil
}

// tkey returns table byte + row key in a new slice.
func tkey(t rowkey.Table, row []byte) []byte {
	k := make([]byte, 0, 1+len(row))
	return append(append(k, byte(t)), row...)
}

// get returns a copy of the value at key.
func (s *Store) get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := slices.Clone(v)
	_ = c.Close()
	return out, true, nil
}

func (s *Store) getInt(r pebble.Reader, key []byte, dst *int64) error {
	v, ok, err := s.get(r, key)
	if err != nil || !ok {
		return err
	}
	u, err := rowkey.DecodeUint64(v)
	if err != nil {
		return err
	}
	*dst = int64(u)
	return nil
}

// acquire checks the store is usable and read-locks it against Close.
func (s *Store) acquire() (*pebble.DB, error) {
	s.state.RLock()
	if s.closed {
		s.state.RUnlock()
		return nil, storage.ErrClosed
	}
	if p := s.failed.Load(); p != nil {
		s.state.RUnlock()
		return nil, *p
	}
	return s.db, nil
}

func (s *Store) release() { s.state.RUnlock() }

// commit applies wb synced, turning a Pebble fatal error into an error.
func (s *Store) commit(wb *pebble.Batch) (err error) {
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
	return wb.Commit(pebble.Sync)
}

// Write implements storage.Writer. It fails with ErrDiskFull when free
// space is below Config.MinFreeBytes, and with an error wrapping ErrFailed
// when Pebble could not write its log; in both cases nothing of the batch
// is applied.
func (s *Store) Write(ctx context.Context, b *storage.Batch) (applied bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := storage.ValidateBatch(b); err != nil {
		return false, err
	}
	start := time.Now()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	db, err := s.acquire()
	if err != nil {
		return false, err
	}
	defer s.release()
	defer func() {
		if err != nil {
			err = s.readErr(err, fmt.Sprintf("rows batch %s/%d updates", b.SensorID, b.Seq))
			s.m.WriteErrors.Inc()
		}
	}()

	dedupeKey := tkey(rowkey.TableDedupe, rowkey.AppendEpochDedupeKey(nil, b.SensorID, b.Epoch, b.Seq))
	if _, seen, err := s.get(db, dedupeKey); err != nil {
		return false, fmt.Errorf("read dedupe marker: %w", s.readErr(err, "dedupe marker of "+b.SensorID))
	} else if seen {
		s.m.Deduplicated.Inc()
		return false, nil
	}

	var encBytes int64
	for i := range b.Blocks {
		encBytes += int64(len(b.Blocks[i].Encoded))
	}
	if s.cfg.MinFreeBytes > 0 {
		du, err := s.fs.GetDiskUsage(s.dir)
		if err != nil {
			return false, fmt.Errorf("disk usage: %w", err)
		}
		if int64(du.AvailBytes) < s.cfg.MinFreeBytes+2*encBytes {
			return false, fmt.Errorf("%w: %d bytes free, need %d + %d", ErrDiskFull, du.AvailBytes, s.cfg.MinFreeBytes, 2*encBytes)
		}
	}

	wb := db.NewBatch()
	defer wb.Close()
	refs := make(map[flow.ID]*storage.FlowRef)
	addRef := func(r storage.FlowRef) {
		p := refs[r.FlowID]
		if p == nil {
			p = &storage.FlowRef{}
			refs[r.FlowID] = p
		}
		p.Merge(&r)
	}

	dataBytes, maxSpan := s.dataBytes, s.maxSpan.Load()
	var blocks, newBytes int64
	seenBlock := make(map[string]bool, len(b.Blocks))
	var kbuf, vbuf []byte
	for i := range b.Blocks {
		blk := &b.Blocks[i]
		m := blk.Meta
		if m.SensorID == "" {
			m.SensorID = b.SensorID
		}
		bk := rowkey.BlockKey{Key: m.Key, Bucket: rowkey.Bucket(m.First, s.bucket), First: m.First,
			Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
		kbuf = rowkey.AppendBlockKey(append(kbuf[:0], byte(rowkey.TableBlocks)), &bk)
		if seenBlock[string(kbuf)] {
			continue // the same block twice in one batch: keep the first
		}
		seenBlock[string(kbuf)] = true
		// A block resent in a later batch replaces the stored one; keep
		// the byte count and the age index exact.
		if old, ok, err := s.get(db, kbuf); err != nil {
			return false, fmt.Errorf("read block: %w", err)
		} else if ok {
			var ob storage.Block
			if err := rowkey.DecodeBlock(kbuf[1:], old, &ob); err != nil {
				return false, fmt.Errorf("decode stored block: %w", err)
			}
			dataBytes -= int64(len(ob.Encoded))
			if err := wb.Delete(tkey(rowkey.TableBlockAge, rowkey.AppendAgeKey(nil, ob.Meta.Last, kbuf[1:])), nil); err != nil {
				return false, err
			}
		}
		vbuf = rowkey.AppendBlockValue(vbuf[:0], &m, blk.Encoded)
		if err := wb.Set(kbuf, vbuf, nil); err != nil {
			return false, fmt.Errorf("batch block: %w", err)
		}
		size := int64(len(blk.Encoded))
		ak := tkey(rowkey.TableBlockAge, rowkey.AppendAgeKey(nil, m.Last, kbuf[1:]))
		if err := wb.Set(ak, rowkey.AppendUint64(nil, uint64(size)), nil); err != nil {
			return false, fmt.Errorf("batch age: %w", err)
		}
		dataBytes += size
		newBytes += size
		blocks++
		maxSpan = max(maxSpan, m.Last-m.First)
		addRef(storage.FlowRef{Key: m.Key, FlowID: m.FlowID, CommunityID: m.CommunityID, SensorID: m.SensorID,
			First: time.Unix(0, m.First).UTC(), Last: time.Unix(0, m.Last).UTC()})
	}

	records, err := s.batchRecords(db, wb, b, addRef)
	if err != nil {
		return false, err
	}
	if err := s.batchRefs(db, wb, refs); err != nil {
		return false, err
	}

	if err := wb.Set(dedupeKey, nil, nil); err != nil {
		return false, err
	}
	seqKey := tkey(rowkey.TableSeq, rowkey.AppendSeqKey(nil, b.SensorID, b.Epoch))
	var cur int64
	if err := s.getInt(db, seqKey, &cur); err != nil {
		return false, fmt.Errorf("read seq: %w", err)
	}
	if b.Seq > uint64(cur) {
		if err := wb.Set(seqKey, rowkey.AppendUint64(nil, b.Seq), nil); err != nil {
			return false, err
		}
	}
	if err := wb.Set(tkey(rowkey.TableMeta, metaDataBytes), rowkey.AppendUint64(nil, uint64(dataBytes)), nil); err != nil {
		return false, err
	}
	if maxSpan != s.maxSpan.Load() {
		if err := wb.Set(tkey(rowkey.TableMeta, metaMaxSpan), rowkey.AppendUint64(nil, uint64(maxSpan)), nil); err != nil {
			return false, err
		}
	}
	if err := s.commit(wb); err != nil {
		return false, fmt.Errorf("commit batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	s.dataBytes = dataBytes
	// Publish the span before any reader could look for the new blocks
	// it covers: they became visible at commit, and a reader using the
	// older, smaller span could only miss blocks of this very batch.
	s.maxSpan.Store(maxSpan)
	s.m.Writes.Inc()
	s.m.BlocksWritten.Add(float64(blocks))
	s.m.BytesWritten.Add(float64(newBytes))
	s.m.Records.Add(float64(records))
	s.m.DataBytes.Set(float64(dataBytes))
	s.m.WriteLatency.Observe(time.Since(start).Seconds())
	return true, nil
}

func (s *Store) recordIsLong(r *flow.Record) bool {
	return !r.End.IsZero() && r.End.Sub(r.Start) > s.cfg.LongFlow
}

// batchRecords writes the newest segment of each record in b, unless the
// store already holds a newer one.
func (s *Store) batchRecords(db *pebble.DB, wb *pebble.Batch, b *storage.Batch, addRef func(storage.FlowRef)) (int, error) {
	newest := make(map[flow.ID]*flow.Record, len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		if p := newest[r.ID]; p == nil || r.Segment >= p.Segment {
			newest[r.ID] = r
		}
	}
	n := 0
	var pb tapirv1.FlowRecord
	for id, r := range newest {
		if r.SensorID == "" {
			cp := *r
			cp.SensorID = b.SensorID
			r = &cp
		}
		rk := tkey(rowkey.TableRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.Start.UnixNano(), s.bucket), id))
		old, ok, err := s.get(db, rk)
		if err != nil {
			return 0, fmt.Errorf("read record: %w", err)
		}
		if ok {
			var op tapirv1.FlowRecord
			var or flow.Record
			if err := proto.Unmarshal(old, &op); err != nil {
				return 0, fmt.Errorf("decode stored record: %w", err)
			}
			if err := tapirv1.ToRecord(&op, &or); err != nil {
				return 0, fmt.Errorf("decode stored record: %w", err)
			}
			if or.Segment > r.Segment {
				continue // a newer report is stored already
			}
			if s.recordIsLong(&or) {
				lk := tkey(rowkey.TableLongRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(or.End.UnixNano(), s.bucket), id))
				if err := wb.Delete(lk, nil); err != nil {
					return 0, err
				}
			}
		}
		v, err := proto.Marshal(tapirv1.FromRecord(r, &pb))
		if err != nil {
			return 0, fmt.Errorf("marshal record: %w", err)
		}
		if err := wb.Set(rk, v, nil); err != nil {
			return 0, err
		}
		if s.recordIsLong(r) {
			lk := tkey(rowkey.TableLongRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.End.UnixNano(), s.bucket), id))
			if err := wb.Set(lk, v, nil); err != nil {
				return 0, err
			}
		}
		n++
		addRef(storage.FlowRef{Key: r.Key(), FlowID: id, CommunityID: r.CommunityID, SensorID: r.SensorID,
			First: r.Start, Last: r.End})
	}
	return n, nil
}

// batchRefs merges the batch's flow refs into the flow ID and Community
// ID indexes.
func (s *Store) batchRefs(db *pebble.DB, wb *pebble.Batch, refs map[flow.ID]*storage.FlowRef) error {
	for id, r := range refs {
		fk := tkey(rowkey.TableFlowID, rowkey.AppendFlowIDKey(nil, id))
		old, ok, err := s.get(db, fk)
		if err != nil {
			return fmt.Errorf("read flow ref: %w", err)
		}
		if ok {
			var or storage.FlowRef
			if err := rowkey.DecodeRef(old, &or); err != nil {
				return fmt.Errorf("decode flow ref: %w", err)
			}
			or.Merge(r)
			r = &or
		}
		v := rowkey.AppendRef(nil, r)
		if err := wb.Set(fk, v, nil); err != nil {
			return err
		}
		if cid, ok := rowkey.ParseCommunityID(r.CommunityID); ok {
			if err := wb.Set(tkey(rowkey.TableCommunity, rowkey.AppendCommunityKey(nil, &cid, id)), v, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// DurableSeq implements storage.Writer.
func (s *Store) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	db, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	var v int64
	if err := s.getInt(db, tkey(rowkey.TableSeq, rowkey.AppendSeqKey(nil, sensorID, epoch)), &v); err != nil {
		return 0, fmt.Errorf("read seq: %w", s.readErr(err, "durable seq of sensor "+sensorID))
	}
	return uint64(v), nil
}

// LookupFlow implements storage.Reader: a Community ID is a prefix scan of
// the Community ID index, a flow ID one point read.
// A corruption error wraps storage.ErrCorrupt and names the flow.
func (s *Store) LookupFlow(ctx context.Context, id string, from, to time.Time) ([]storage.FlowRef, error) {
	refs, err := s.lookupFlow(ctx, id, from, to)
	return refs, s.readErr(err, "index of flow "+id)
}

func (s *Store) lookupFlow(ctx context.Context, id string, from, to time.Time) ([]storage.FlowRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	lo, hi := rowkey.NanosOr(from, math.MinInt64), rowkey.NanosOr(to, math.MaxInt64)
	var out []storage.FlowRef
	keep := func(v []byte) error {
		var r storage.FlowRef
		if err := rowkey.DecodeRef(v, &r); err != nil {
			return err
		}
		if rowkey.NanosOr(r.First, math.MinInt64) <= hi && rowkey.NanosOr(r.Last, math.MaxInt64) >= lo {
			out = append(out, r)
		}
		return nil
	}
	if cid, ok := rowkey.ParseCommunityID(id); ok {
		prefix := tkey(rowkey.TableCommunity, cid[:])
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: rowkey.PrefixEnd(prefix)})
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", id, err)
		}
		for s.first(it, prefix); it.Valid(); it.Next() {
			if err := keep(it.Value()); err != nil {
				_ = s.closeIter(it)
				return nil, fmt.Errorf("lookup %s: %w", id, err)
			}
		}
		if err := s.closeIter(it); err != nil {
			return nil, fmt.Errorf("lookup %s: %w", id, err)
		}
	} else if fid, err := flow.ParseID(id); err == nil {
		v, ok, err := s.get(db, tkey(rowkey.TableFlowID, rowkey.AppendFlowIDKey(nil, fid)))
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", id, err)
		}
		if ok {
			if err := keep(v); err != nil {
				return nil, fmt.Errorf("lookup %s: %w", id, err)
			}
		}
	} else {
		return nil, fmt.Errorf("%w: %q is neither a Community ID nor a flow ID", storage.ErrFlowUnknown, id)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", storage.ErrFlowUnknown, id)
	}
	return out, nil
}

// ScanBlocks implements storage.Reader with one bounded range scan: from
// (salt, key, bucket of from minus the longest block span ever written) to
// (salt, key, bucket after to).
// A corruption error wraps storage.ErrCorrupt and names the flow key.
func (s *Store) ScanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	return s.readErr(s.scanBlocks(ctx, key, from, to, fn), "packet blocks of flow "+key.String())
}

func (s *Store) scanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	lo, hi := rowkey.NanosOr(from, math.MinInt64), rowkey.NanosOr(to, math.MaxInt64)
	prefix := rowkey.AppendFlowPrefix([]byte{byte(rowkey.TableBlocks)}, &key)
	lower, upper := prefix, rowkey.PrefixEnd(prefix)
	if !from.IsZero() {
		lower = rowkey.AppendTime(slices.Clip(prefix), rowkey.Bucket(rowkey.SubSat(lo, s.maxSpan.Load()), s.bucket))
	}
	if !to.IsZero() {
		upper = rowkey.AppendTime(slices.Clip(prefix), rowkey.NextBucket(hi, s.bucket))
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scan blocks: %w", err)
	}
	var blk storage.Block
	for s.first(it, lower); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			_ = s.closeIter(it)
			return err
		}
		if err := rowkey.DecodeBlock(it.Key()[1:], it.Value(), &blk); err != nil {
			_ = s.closeIter(it)
			return fmt.Errorf("scan blocks: %w", err)
		}
		if blk.Meta.First > hi || blk.Meta.Last < lo {
			continue
		}
		if err := fn(&blk); err != nil {
			_ = s.closeIter(it)
			return err
		}
	}
	if err := s.closeIter(it); err != nil {
		return fmt.Errorf("scan blocks: %w", err)
	}
	v, ok, err := s.get(db, tkey(rowkey.TableExpired, prefix[1:]))
	if err != nil {
		return fmt.Errorf("read expired span: %w", err)
	}
	if ok {
		return rowkey.ExpiredIn(key.String(), v, lo, hi)
	}
	return nil
}

// ScanRecords implements storage.Reader. Flows are found by two range
// scans: the start-time index from bucket(from - LongFlow) to
// bucket(to)+1, which holds every flow of at most LongFlow that overlaps
// the window, and the end-time index of long flows from bucket(from) on,
// for the longer ones that started before that.
// A corruption error wraps storage.ErrCorrupt.
func (s *Store) ScanRecords(ctx context.Context, from, to time.Time, fn func(*flow.Record) error) error {
	return s.readErr(s.scanRecords(ctx, from, to, fn), fmt.Sprintf("flow records %s..%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)))
}

func (s *Store) scanRecords(ctx context.Context, from, to time.Time, fn func(*flow.Record) error) error {
	if from.IsZero() || to.IsZero() {
		return errors.New("scan records: from and to are required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	lo, hi := from.UnixNano(), to.UnixNano()
	overlaps := func(r *flow.Record) bool {
		end := r.End
		if end.IsZero() {
			end = r.Start
		}
		return r.Start.UnixNano() <= hi && end.UnixNano() >= lo
	}
	startLower := tkey(rowkey.TableRecords, rowkey.AppendTime(nil, rowkey.Bucket(rowkey.SubSat(lo, s.long), s.bucket)))
	startUpper := tkey(rowkey.TableRecords, rowkey.AppendTime(nil, rowkey.NextBucket(hi, s.bucket)))

	type early struct {
		key []byte
		r   flow.Record
	}
	var earlier []early
	var pb tapirv1.FlowRecord
	decode := func(v []byte, r *flow.Record) error {
		if err := proto.Unmarshal(v, &pb); err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		if err := tapirv1.ToRecord(&pb, r); err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		return nil
	}
	longLower := tkey(rowkey.TableLongRecords, rowkey.AppendTime(nil, rowkey.Bucket(lo, s.bucket)))
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: longLower, UpperBound: []byte{byte(rowkey.TableLongRecords) + 1}})
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		var r flow.Record
		if err := decode(it.Value(), &r); err != nil {
			_ = s.closeIter(it)
			return err
		}
		rk := tkey(rowkey.TableRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.Start.UnixNano(), s.bucket), r.ID))
		if bytes.Compare(rk, startLower) < 0 && overlaps(&r) {
			earlier = append(earlier, early{rk, r})
		}
	}
	if err := s.closeIter(it); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	slices.SortFunc(earlier, func(a, b early) int { return bytes.Compare(a.key, b.key) })
	for i := range earlier {
		if err := fn(&earlier[i].r); err != nil {
			return err
		}
	}

	it, err = db.NewIter(&pebble.IterOptions{LowerBound: startLower, UpperBound: startUpper})
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	var r flow.Record
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			_ = s.closeIter(it)
			return err
		}
		if err := decode(it.Value(), &r); err != nil {
			_ = s.closeIter(it)
			return err
		}
		if !overlaps(&r) {
			continue
		}
		if err := fn(&r); err != nil {
			_ = s.closeIter(it)
			return err
		}
	}
	if err := s.closeIter(it); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	return nil
}

// Expire implements storage.Retention. It walks the age index (blocks in
// order of their last packet time), removing blocks whose last packet is
// before olderThan, then further blocks in the same order while the data
// is larger than maxBytes. Each removal batch also widens the removed
// span of each flow key it touches (so ScanBlocks can answer
// ErrPacketsExpired) and commits the data byte counter.
// A corruption error wraps storage.ErrCorrupt.
func (s *Store) Expire(ctx context.Context, olderThan time.Time, maxBytes int64) (storage.ExpireStats, error) {
	st, err := s.expire(ctx, olderThan, maxBytes)
	return st, s.readErr(err, "age index (retention)")
}

func (s *Store) expire(ctx context.Context, olderThan time.Time, maxBytes int64) (storage.ExpireStats, error) {
	var st storage.ExpireStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	db, err := s.acquire()
	if err != nil {
		return st, err
	}
	defer s.release()
	cutoff := rowkey.NanosOr(olderThan, math.MinInt64)
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(rowkey.TableBlockAge)},
		UpperBound: []byte{byte(rowkey.TableBlockAge) + 1},
	})
	if err != nil {
		return st, fmt.Errorf("expire: %w", err)
	}
	defer it.Close()

	dataBytes := s.dataBytes
	spans := make(map[string]rowkey.Span)
	wb := db.NewBatch()
	pending := 0
	var pendBlocks, pendBytes int64
	flush := func() error {
		defer func() { wb.Close(); wb = db.NewBatch() }()
		for prefix, sp := range spans {
			xk := tkey(rowkey.TableExpired, []byte(prefix))
			old, ok, err := s.get(db, xk)
			if err != nil {
				return err
			}
			if ok {
				o, err := rowkey.DecodeSpan(old)
				if err != nil {
					return err
				}
				sp = sp.Union(o)
			}
			if err := wb.Set(xk, rowkey.AppendSpan(nil, sp), nil); err != nil {
				return err
			}
		}
		clear(spans)
		if err := wb.Set(tkey(rowkey.TableMeta, metaDataBytes), rowkey.AppendUint64(nil, uint64(dataBytes)), nil); err != nil {
			return err
		}
		if err := s.commit(wb); err != nil {
			return err
		}
		s.dataBytes = dataBytes
		st.Blocks += pendBlocks
		st.Bytes += pendBytes
		s.m.ExpiredBlocks.Add(float64(pendBlocks))
		s.m.ExpiredBytes.Add(float64(pendBytes))
		s.m.DataBytes.Set(float64(dataBytes))
		pending, pendBlocks, pendBytes = 0, 0, 0
		return nil
	}
	defer func() { wb.Close() }()
	for it.First(); it.Valid(); it.Next() {
		last, bkey, err := rowkey.DecodeAgeKey(it.Key()[1:])
		if err != nil {
			return st, fmt.Errorf("expire: %w", err)
		}
		if last >= cutoff && (maxBytes <= 0 || dataBytes <= maxBytes) {
			break
		}
		size, err := rowkey.DecodeUint64(it.Value())
		if err != nil {
			return st, fmt.Errorf("expire: %w", err)
		}
		bk, err := rowkey.DecodeBlockKey(bkey)
		if err != nil {
			return st, fmt.Errorf("expire: %w", err)
		}
		if err := wb.Delete(it.Key(), nil); err != nil {
			return st, err
		}
		if err := wb.Delete(tkey(rowkey.TableBlocks, bkey), nil); err != nil {
			return st, err
		}
		prefix := string(bkey[:rowkey.FlowPrefixLen])
		sp, ok := spans[prefix]
		if !ok {
			sp = rowkey.Span{First: bk.First, Last: last}
		}
		spans[prefix] = sp.Union(rowkey.Span{First: bk.First, Last: last})
		dataBytes -= int64(size)
		pendBlocks++
		pendBytes += int64(size)
		pending++
		if pending >= s.cfg.ExpireBatchBlocks {
			if err := flush(); err != nil {
				return st, fmt.Errorf("expire: %w", err)
			}
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return st, fmt.Errorf("expire: %w", err)
	}
	if pending > 0 {
		if err := flush(); err != nil {
			return st, fmt.Errorf("expire: %w", err)
		}
	}
	return st, nil
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
	s.state.Lock()
	defer s.state.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// first positions a prefix scan's iterator, whose lower bound is seek, on
// its first key. With prefixComparer it seeks in prefix mode, so that
// sstables whose bloom filter does not hold seek's prefix (the flow
// prefix or Community ID hash) are skipped unread; the iteration then
// ends at the prefix's end.
func (s *Store) first(it *pebble.Iterator, seek []byte) {
	if s.prefixSeek {
		it.SeekPrefixGE(seek)
		return
	}
	it.First()
}

// closeIter records what a read-path iterator loaded, then closes it.
func (s *Store) closeIter(it *pebble.Iterator) error {
	s.reads.add(it.Stats())
	return it.Close()
}
