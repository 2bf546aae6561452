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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tsuna/gohbase"
	"github.com/tsuna/gohbase/hrpc"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
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

// markerValue is the dedupe marker's cell: HBase's check-and-put treats an
// empty cell like a missing one, so the marker must not be empty.
var markerValue = []byte{1}

// Store is a storage.BlockStore on HBase.
type Store struct {
	cfg    Config
	table  []byte
	log    *slog.Logger
	m      *storemetrics.Metrics
	bucket int64
	long   int64
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

	state  sync.RWMutex // write-locked by Close, read-locked by operations
	closed bool
}

var _ storage.BlockStore = (*Store)(nil)

// Open connects to the cluster, creates the table if missing (when
// cfg.CreateTable), and checks its layout. Metrics are registered on reg
// (nil: not registered). ctx bounds the set-up.
func Open(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hbase store config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
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
	s := &Store{cfg: cfg, table: []byte(cfg.Table), log: logger, m: m,
		bucket: int64(cfg.TimeBucket), long: int64(cfg.LongFlow),
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
	want := rowkey.AppendUint64(rowkey.AppendUint64(nil, uint64(s.bucket)), uint64(s.long))
	key := tkey(rowkey.TableMeta, metaLayout)
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

// tkey returns table byte + row key in a new slice.
func tkey(t rowkey.Table, row []byte) []byte {
	k := make([]byte, 0, 1+len(row))
	return append(append(k, byte(t)), row...)
}

// acquire checks the store is open and read-locks it against Close.
func (s *Store) acquire() error {
	s.state.RLock()
	if s.closed {
		s.state.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

func (s *Store) release() { s.state.RUnlock() }

// opContext bounds one operation by OpTimeout.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

// slot takes a place among the calls in flight.
func (s *Store) slot(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unslot() { <-s.sem }

// get returns the value of the row's one cell in family.
func (s *Store) get(ctx context.Context, key []byte, family string) ([]byte, bool, error) {
	if err := s.slot(ctx); err != nil {
		return nil, false, err
	}
	defer s.unslot()
	g, err := hrpc.NewGet(ctx, s.table, key, hrpc.Families(map[string][]string{family: {qualifier}}))
	if err != nil {
		return nil, false, err
	}
	r, err := s.client.Get(g)
	if err != nil {
		return nil, false, err
	}
	for _, c := range r.Cells {
		return c.Value, true, nil
	}
	return nil, false, nil
}

// getRow returns every cell of the row in family.
func (s *Store) getRow(ctx context.Context, key []byte, family string) ([]*hrpc.Cell, error) {
	if err := s.slot(ctx); err != nil {
		return nil, err
	}
	defer s.unslot()
	g, err := hrpc.NewGet(ctx, s.table, key, hrpc.Families(map[string][]string{family: nil}))
	if err != nil {
		return nil, err
	}
	r, err := s.client.Get(g)
	if err != nil {
		return nil, err
	}
	return r.Cells, nil
}

// put writes one cellPut.
func (s *Store) put(ctx context.Context, c *cellPut) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	var opts []func(hrpc.Call) error
	if c.ts != 0 {
		opts = append(opts, hrpc.TimestampUint64(c.ts))
	}
	p, err := hrpc.NewPut(ctx, s.table, c.key, map[string]map[string][]byte{c.family: c.cells}, opts...)
	if err != nil {
		return err
	}
	if _, err = s.client.Put(p); err != nil {
		return err
	}
	if c.mark != nil {
		s.refPut.add(c.key, c.mark)
	}
	return nil
}

func (s *Store) del(ctx context.Context, key []byte) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	d, err := hrpc.NewDel(ctx, s.table, key, nil)
	if err != nil {
		return err
	}
	_, err = s.client.Delete(d)
	return err
}

// checkAndPut writes value when the cell currently holds expect (nil:
// when it is absent), and reports whether it did.
func (s *Store) checkAndPut(ctx context.Context, key []byte, family string, value, expect []byte) (bool, error) {
	if err := s.slot(ctx); err != nil {
		return false, err
	}
	defer s.unslot()
	p, err := hrpc.NewPut(ctx, s.table, key, map[string]map[string][]byte{family: {qualifier: value}})
	if err != nil {
		return false, err
	}
	return s.client.CheckAndPut(p, family, qualifier, expect)
}

// raise sets the 8-byte counter at key to v unless it holds a larger one
// already (compare-and-set loop). The value this store last saw at key
// is tried first, without reading.
func (s *Store) raise(ctx context.Context, key []byte, v uint64) error {
	cur, ok := s.seen.get(key)
	for {
		if !ok {
			var err error
			if cur, ok, err = s.get(ctx, key, familyIndex); err != nil {
				return err
			}
			if ok {
				s.seen.set(key, cur)
			}
		}
		var expect []byte
		if ok {
			c, err := rowkey.DecodeUint64(cur)
			if err != nil {
				return err
			}
			if c >= v {
				return nil
			}
			expect = cur
		}
		nv := rowkey.AppendUint64(nil, v)
		done, err := s.checkAndPut(ctx, key, familyIndex, nv, expect)
		if err != nil {
			return err
		}
		if done {
			s.seen.set(key, nv)
			return nil
		}
		ok = false
	}
}

func (s *Store) readMaxSpan(ctx context.Context) (int64, error) {
	v, ok, err := s.get(ctx, tkey(rowkey.TableMeta, metaMaxSpan), familyIndex)
	if err != nil || !ok {
		return 0, err
	}
	u, err := rowkey.DecodeUint64(v)
	return int64(u), err
}

// parallel runs fn(i) for i in [0, n) on at most Config.Concurrency
// goroutines (the store-wide call bound applies on top) and returns every
// error joined.
func (s *Store) parallel(n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, s.cfg.Concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Write implements storage.Writer (see the package comment for how a
// batch is applied without multi-row transactions). It returns only after
// HBase acknowledged every row of the batch.
func (s *Store) Write(ctx context.Context, b *storage.Batch) (applied bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := storage.ValidateBatch(b); err != nil {
		return false, err
	}
	if err := s.acquire(); err != nil {
		return false, err
	}
	defer s.release()
	start := time.Now()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	defer func() {
		if err != nil {
			s.m.WriteErrors.Inc()
		}
	}()

	dedupeKey := tkey(rowkey.TableDedupe, rowkey.AppendEpochDedupeKey(nil, b.SensorID, b.Epoch, b.Seq))
	if _, seen, err := s.get(ctx, dedupeKey, familyIndex); err != nil {
		return false, fmt.Errorf("read dedupe marker: %w", err)
	} else if seen {
		s.m.Deduplicated.Inc()
		return false, nil
	}

	refs := make(map[flow.ID]*storage.FlowRef)
	addRef := func(r storage.FlowRef) {
		p := refs[r.FlowID]
		if p == nil {
			p = &storage.FlowRef{}
			refs[r.FlowID] = p
		}
		p.Merge(&r)
	}
	var rows []cellPut
	var blocks, newBytes int64
	maxSpan := s.maxSpan.Load()
	seenBlock := make(map[string]bool, len(b.Blocks))
	for i := range b.Blocks {
		blk := &b.Blocks[i]
		m := blk.Meta
		if m.SensorID == "" {
			m.SensorID = b.SensorID
		}
		bk := rowkey.BlockKey{Key: m.Key, Bucket: rowkey.Bucket(m.First, s.bucket), First: m.First,
			Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
		key := rowkey.AppendBlockKey([]byte{byte(rowkey.TableBlocks)}, &bk)
		if seenBlock[string(key)] {
			continue // the same block twice in one batch: keep the first
		}
		seenBlock[string(key)] = true
		size := int64(len(blk.Encoded))
		rows = append(rows,
			cellPut{key: key, family: familyPackets, cells: map[string][]byte{qualifier: rowkey.AppendBlockValue(nil, &m, blk.Encoded)}},
			cellPut{key: tkey(rowkey.TableBlockAge, rowkey.AppendAgeKey(nil, m.Last, key[1:])), family: familyIndex,
				cells: map[string][]byte{qualifier: rowkey.AppendUint64(nil, uint64(size))}})
		newBytes += size
		blocks++
		maxSpan = max(maxSpan, m.Last-m.First)
		addRef(storage.FlowRef{Key: m.Key, FlowID: m.FlowID, CommunityID: m.CommunityID, SensorID: m.SensorID,
			First: time.Unix(0, m.First).UTC(), Last: time.Unix(0, m.Last).UTC()})
	}
	recs := batchRecords(b, addRef)
	refRows, err := s.batchRefRows(ctx, refs)
	if err != nil {
		return false, fmt.Errorf("write batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	rows = append(rows, refRows...)

	// The longest span must be durable before any block that needs it is
	// visible, or a window scan could start too late and miss it.
	if maxSpan > s.maxSpan.Load() {
		if err := s.raise(ctx, tkey(rowkey.TableMeta, metaMaxSpan), uint64(maxSpan)); err != nil {
			return false, fmt.Errorf("raise max span: %w", err)
		}
		for cur := s.maxSpan.Load(); maxSpan > cur && !s.maxSpan.CompareAndSwap(cur, maxSpan); cur = s.maxSpan.Load() {
		}
	}
	// Rows are plain puts (the flow index rows too: see refs.go); the
	// flow records are merged in place (see mergeRecord), at the same time.
	var records atomic.Int64
	var long []*flow.Record
	for _, r := range recs {
		if s.recordIsLong(r) {
			long = append(long, r)
			continue
		}
		p, err := s.shortRecordPut(r)
		if err != nil {
			return false, err
		}
		rows = append(rows, p)
		records.Add(1)
	}
	if err := s.parallel(len(rows)+len(long), func(i int) error {
		if i >= len(rows) {
			stored, err := s.mergeRecord(ctx, long[i-len(rows)])
			if stored {
				records.Add(1)
			}
			return err
		}
		return s.put(ctx, &rows[i])
	}); err != nil {
		return false, fmt.Errorf("write batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	won, err := s.checkAndPut(ctx, dedupeKey, familyIndex, markerValue, nil)
	if err != nil {
		return false, fmt.Errorf("write dedupe marker %s/%d: %w", b.SensorID, b.Seq, err)
	}
	if !won {
		s.m.Deduplicated.Inc()
		return false, nil
	}
	if err := s.raise(ctx, tkey(rowkey.TableSeq, rowkey.AppendSeqKey(nil, b.SensorID, b.Epoch)), b.Seq); err != nil {
		// The batch is applied (its marker is durable); the sequence only
		// lags until the next batch raises it. Report it all the same so
		// the sensor resends, which the marker turns into a no-op.
		return false, fmt.Errorf("raise durable seq of %s to %d: %w", b.SensorID, b.Seq, err)
	}
	s.m.Writes.Inc()
	s.m.BlocksWritten.Add(float64(blocks))
	s.m.BytesWritten.Add(float64(newBytes))
	s.m.Records.Add(float64(records.Load()))
	s.m.WriteLatency.Observe(time.Since(start).Seconds())
	return true, nil
}

func (s *Store) recordIsLong(r *flow.Record) bool {
	return !r.End.IsZero() && r.End.Sub(r.Start) > s.cfg.LongFlow
}

func decodeRecord(v []byte, r *flow.Record) error {
	var pb tapirv1.FlowRecord
	if err := proto.Unmarshal(v, &pb); err != nil {
		return err
	}
	return tapirv1.ToRecord(&pb, r)
}

// batchRecords returns the newest segment of each flow record in b (with
// the batch's sensor ID filled in) and adds every one to the batch's flow
// refs. An older segment's span lies within the newer one's (same start,
// earlier end), so adding a record that mergeRecord later finds superseded
// never widens a ref beyond what the stored records cover.
func batchRecords(b *storage.Batch, addRef func(storage.FlowRef)) []*flow.Record {
	newest := make(map[flow.ID]*flow.Record, len(b.Records))
	var order []*flow.Record
	for i := range b.Records {
		r := &b.Records[i]
		if p := newest[r.ID]; p == nil {
			order = append(order, r)
			newest[r.ID] = r
		} else if r.Segment >= p.Segment {
			newest[r.ID] = r
		}
	}
	recs := make([]*flow.Record, len(order))
	for i, r := range order {
		r = newest[r.ID]
		if r.SensorID == "" {
			cp := *r
			cp.SensorID = b.SensorID
			r = &cp
		}
		recs[i] = r
		addRef(storage.FlowRef{Key: r.Key(), FlowID: r.ID, CommunityID: r.CommunityID, SensorID: r.SensorID,
			First: r.Start, Last: r.End})
	}
	return recs
}

func (s *Store) recordKey(r *flow.Record) []byte {
	return tkey(rowkey.TableRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.Start.UnixNano(), s.bucket), r.ID))
}

// longKey is the long-flow index row of r (by the bucket of its end).
func (s *Store) longKey(r *flow.Record) []byte {
	return tkey(rowkey.TableLongRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.End.UnixNano(), s.bucket), r.ID))
}

// mergeRecord stores r unless its flow's record row holds a newer segment
// (the rule of every backend: a report replaces the stored one unless
// that one has a higher Segment), and moves the long-flow row with it. It
// reports whether r was stored.
//
// Several writers may store reports of one flow at once (two collectors
// sharing the table, a sensor failing over, a retry racing the attempt it
// replaces), so the record row is replaced with a check-and-put against
// the value the decision was made on, reading and deciding again when
// another writer got there first: an older segment can never overwrite a
// newer one. The long-flow rows follow the record row: only the writer
// that replaced a record moves its long row (puts its own with the same
// newest-segment rule, deletes the replaced one's), and a writer that
// finds its record replaced after putting its long row deletes that row
// unless the newer record uses it, so no row of an older segment stays
// behind (segments end no earlier than the ones before them, so a newer
// record's long row is never one an older writer deletes).
func (s *Store) mergeRecord(ctx context.Context, r *flow.Record) (bool, error) {
	var pb tapirv1.FlowRecord
	v, err := proto.Marshal(tapirv1.FromRecord(r, &pb))
	if err != nil {
		return false, fmt.Errorf("marshal record: %w", err)
	}
	key := s.recordKey(r)
	var old *flow.Record
	// First guess: the value this store last saw there, or none (a new
	// flow's first report); a wrong guess costs a failed check-and-put.
	cur, ok := s.seen.get(key)
	for guessed := true; ; guessed = false {
		if !guessed {
			if cur, ok, err = s.get(ctx, key, familyIndex); err != nil {
				return false, fmt.Errorf("read record: %w", err)
			}
			if ok {
				s.seen.set(key, cur)
			}
		}
		old = nil
		if ok {
			old = new(flow.Record)
			if err := decodeRecord(cur, old); err != nil {
				return false, fmt.Errorf("decode stored record: %w", err)
			}
			if old.Segment > r.Segment {
				return false, nil // a newer report is stored already
			}
			if bytes.Equal(cur, v) {
				break // stored already (a retry): make sure of its long row
			}
		} else {
			cur = nil
		}
		done, err := s.checkAndPut(ctx, key, familyIndex, v, cur)
		if err != nil {
			return false, fmt.Errorf("write record: %w", err)
		}
		if done {
			s.seen.set(key, v)
			break
		}
	}
	long := s.recordIsLong(r)
	var lkey []byte
	if long {
		lkey = s.longKey(r)
		if err := s.mergeLongRow(ctx, lkey, r, v); err != nil {
			return false, fmt.Errorf("write long-flow row: %w", err)
		}
	}
	if old != nil && s.recordIsLong(old) {
		if okey := s.longKey(old); !bytes.Equal(okey, lkey) {
			if err := s.del(ctx, okey); err != nil {
				return false, fmt.Errorf("delete old long-flow row: %w", err)
			}
		}
	}
	if long {
		// A newer report may have replaced r and deleted r's long row
		// before it was put: check, and delete it then.
		cur, ok, err := s.get(ctx, key, familyIndex)
		if err != nil {
			return false, fmt.Errorf("read record: %w", err)
		}
		if ok && !bytes.Equal(cur, v) {
			var now flow.Record
			if err := decodeRecord(cur, &now); err != nil {
				return false, fmt.Errorf("decode stored record: %w", err)
			}
			if !s.recordIsLong(&now) || !bytes.Equal(s.longKey(&now), lkey) {
				if err := s.del(ctx, lkey); err != nil {
					return false, fmt.Errorf("delete superseded long-flow row: %w", err)
				}
			}
		}
	}
	return true, nil
}

// mergeLongRow writes v (the encoded r) at the long-flow row key unless it
// holds a newer segment, with a check-and-put loop like mergeRecord's.
func (s *Store) mergeLongRow(ctx context.Context, key []byte, r *flow.Record, v []byte) error {
	for {
		cur, ok, err := s.get(ctx, key, familyIndex)
		if err != nil {
			return err
		}
		if ok {
			if bytes.Equal(cur, v) {
				return nil
			}
			var old flow.Record
			if err := decodeRecord(cur, &old); err != nil {
				return fmt.Errorf("decode stored record: %w", err)
			}
			if old.Segment > r.Segment {
				return nil
			}
		} else {
			cur = nil
		}
		done, err := s.checkAndPut(ctx, key, familyIndex, v, cur)
		if err != nil || done {
			return err
		}
	}
}

// DurableSeq implements storage.Writer.
func (s *Store) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	v, ok, err := s.get(ctx, tkey(rowkey.TableSeq, rowkey.AppendSeqKey(nil, sensorID, epoch)), familyIndex)
	if err != nil {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	if !ok {
		return 0, nil
	}
	return rowkey.DecodeUint64(v)
}

// scan calls fn with the key and value of every row in [start, stop) of
// family, in key order. fn's slices are valid during the call only.
func (s *Store) scan(ctx context.Context, start, stop []byte, family string, fn func(key, value []byte) error) error {
	return s.scanFamily(ctx, start, stop, map[string][]string{family: {qualifier}}, func(cells []*hrpc.Cell) error {
		for _, c := range cells {
			return fn(c.Row, c.Value)
		}
		return nil
	})
}

// scanRows calls fn with every cell of family of each row in [start,
// stop), in key order.
func (s *Store) scanRows(ctx context.Context, start, stop []byte, family string, fn func(cells []*hrpc.Cell) error) error {
	return s.scanFamily(ctx, start, stop, map[string][]string{family: nil}, fn)
}

func (s *Store) scanFamily(ctx context.Context, start, stop []byte, families map[string][]string, fn func(cells []*hrpc.Cell) error) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	sc, err := hrpc.NewScanRange(ctx, s.table, start, stop, hrpc.Families(families))
	if err != nil {
		return err
	}
	scanner := s.client.Scan(sc)
	defer scanner.Close()
	for {
		r, err := scanner.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(r.Cells); err != nil {
			return err
		}
	}
}

// LookupFlow implements storage.Reader: a Community ID is a prefix scan of
// the Community ID index, a flow ID one get.
func (s *Store) LookupFlow(ctx context.Context, id string, from, to time.Time) ([]storage.FlowRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	lo, hi := rowkey.NanosOr(from, math.MinInt64), rowkey.NanosOr(to, math.MaxInt64)
	var out []storage.FlowRef
	keep := func(r *storage.FlowRef) {
		if rowkey.NanosOr(r.First, math.MinInt64) <= hi && rowkey.NanosOr(r.Last, math.MaxInt64) >= lo {
			out = append(out, *r)
		}
	}
	if cid, ok := rowkey.ParseCommunityID(id); ok {
		prefix := tkey(rowkey.TableCommunity, cid[:])
		if err := s.scanRows(ctx, prefix, rowkey.PrefixEnd(prefix), familyIndex, func(cells []*hrpc.Cell) error {
			var r storage.FlowRef
			ok, err := refFromCells(cells, &r)
			if ok {
				keep(&r)
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("lookup %s: %w", id, err)
		}
	} else if fid, err := flow.ParseID(id); err == nil {
		r, ok, err := s.flowIDRef(ctx, fid)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", id, err)
		}
		if ok {
			keep(&r)
		}
	} else {
		return nil, fmt.Errorf("%w: %q is neither a Community ID nor a flow ID", storage.ErrFlowUnknown, id)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", storage.ErrFlowUnknown, id)
	}
	return out, nil
}

// ScanBlocks implements storage.Reader with one bounded range scan, as
// the Pebble store does; the longest block span is re-read from the table
// so that blocks written through another collector are not missed.
func (s *Store) ScanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	lo, hi := rowkey.NanosOr(from, math.MinInt64), rowkey.NanosOr(to, math.MaxInt64)
	prefix := rowkey.AppendFlowPrefix([]byte{byte(rowkey.TableBlocks)}, &key)
	lower, upper := prefix, rowkey.PrefixEnd(prefix)
	if !from.IsZero() {
		span, err := s.readMaxSpan(ctx)
		if err != nil {
			return fmt.Errorf("read max span: %w", err)
		}
		span = max(span, s.maxSpan.Load())
		lower = rowkey.AppendTime(slices.Clip(prefix), rowkey.Bucket(rowkey.SubSat(lo, span), s.bucket))
	}
	if !to.IsZero() {
		upper = rowkey.AppendTime(slices.Clip(prefix), rowkey.NextBucket(hi, s.bucket))
	}
	var blk storage.Block
	if err := s.scan(ctx, lower, upper, familyPackets, func(k, v []byte) error {
		if err := rowkey.DecodeBlock(k[1:], v, &blk); err != nil {
			return err
		}
		if blk.Meta.First > hi || blk.Meta.Last < lo {
			return nil
		}
		return fn(&blk)
	}); err != nil {
		return fmt.Errorf("scan blocks: %w", err)
	}
	v, ok, err := s.get(ctx, tkey(rowkey.TableExpired, prefix[1:]), familyIndex)
	if err != nil {
		return fmt.Errorf("read expired span: %w", err)
	}
	if ok {
		return rowkey.ExpiredIn(key.String(), v, lo, hi)
	}
	return nil
}

// ScanRecords implements storage.Reader with the two range scans of the
// Pebble store (long flows by end time first, then every flow by start
// time).
func (s *Store) ScanRecords(ctx context.Context, from, to time.Time, fn func(*flow.Record) error) error {
	if from.IsZero() || to.IsZero() {
		return errors.New("scan records: from and to are required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
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
	longLower := tkey(rowkey.TableLongRecords, rowkey.AppendTime(nil, rowkey.Bucket(lo, s.bucket)))
	if err := s.scan(ctx, longLower, []byte{byte(rowkey.TableLongRecords) + 1}, familyIndex, func(_, v []byte) error {
		var r flow.Record
		if err := decodeRecord(v, &r); err != nil {
			return err
		}
		rk := tkey(rowkey.TableRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.Start.UnixNano(), s.bucket), r.ID))
		if bytes.Compare(rk, startLower) < 0 && overlaps(&r) {
			earlier = append(earlier, early{rk, r})
		}
		return nil
	}); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	slices.SortFunc(earlier, func(a, b early) int { return bytes.Compare(a.key, b.key) })
	for i := range earlier {
		if err := fn(&earlier[i].r); err != nil {
			return err
		}
	}
	var r flow.Record
	var fnErr error
	err := s.scanRows(ctx, startLower, startUpper, familyIndex, func(cells []*hrpc.Cell) error {
		if ok, err := recordFromCells(cells, &r); err != nil || !ok {
			return err
		}
		if !overlaps(&r) {
			return nil
		}
		if err := fn(&r); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	return nil
}

// Expire implements storage.Retention: it walks the retention index
// (blocks in order of their last packet), removing blocks whose last
// packet is before olderThan, then further blocks in the same order while
// the data is larger than maxBytes (the total is summed from the index
// first: one scan of small rows). For each chunk of blocks it first
// widens the removed spans of their flow keys, then deletes the blocks
// and their index rows, so an interrupted Expire never loses the
// "expired" answer; the next Expire finishes the job.
func (s *Store) Expire(ctx context.Context, olderThan time.Time, maxBytes int64) (storage.ExpireStats, error) {
	var st storage.ExpireStats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := s.acquire(); err != nil {
		return st, err
	}
	defer s.release()
	cutoff := rowkey.NanosOr(olderThan, math.MinInt64)
	ageLo, ageHi := []byte{byte(rowkey.TableBlockAge)}, []byte{byte(rowkey.TableBlockAge) + 1}
	var dataBytes int64
	if maxBytes > 0 {
		sctx, cancel := s.opContext(ctx)
		err := s.scan(sctx, ageLo, ageHi, familyIndex, func(_, v []byte) error {
			size, err := rowkey.DecodeUint64(v)
			dataBytes += int64(size)
			return err
		})
		cancel()
		if err != nil {
			return st, fmt.Errorf("expire: sum sizes: %w", err)
		}
		s.m.DataBytes.Set(float64(dataBytes))
	}
	type victim struct {
		ageKey, blockKey []byte
		first, last      int64
		size             int64
	}
	const chunk = 512
	var pending []victim
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		ctx, cancel := s.opContext(ctx)
		defer cancel()
		spans := make(map[string]rowkey.Span)
		for _, v := range pending {
			p := string(v.blockKey[1 : 1+rowkey.FlowPrefixLen])
			sp, ok := spans[p]
			if !ok {
				sp = rowkey.Span{First: v.first, Last: v.last}
			}
			spans[p] = sp.Union(rowkey.Span{First: v.first, Last: v.last})
		}
		prefixes := make([]string, 0, len(spans))
		for p := range spans {
			prefixes = append(prefixes, p)
		}
		if err := s.parallel(len(prefixes), func(i int) error {
			xk := tkey(rowkey.TableExpired, []byte(prefixes[i]))
			sp := spans[prefixes[i]]
			for {
				old, ok, err := s.get(ctx, xk, familyIndex)
				if err != nil {
					return err
				}
				var expect []byte
				nsp := sp
				if ok {
					o, err := rowkey.DecodeSpan(old)
					if err != nil {
						return err
					}
					nsp = sp.Union(o)
					if nsp == o {
						return nil
					}
					expect = old
				}
				done, err := s.checkAndPut(ctx, xk, familyIndex, rowkey.AppendSpan(nil, nsp), expect)
				if err != nil || done {
					return err
				}
			}
		}); err != nil {
			return fmt.Errorf("widen removed spans: %w", err)
		}
		if err := s.parallel(len(pending), func(i int) error {
			if err := s.del(ctx, pending[i].blockKey); err != nil {
				return err
			}
			return s.del(ctx, pending[i].ageKey)
		}); err != nil {
			return fmt.Errorf("delete blocks: %w", err)
		}
		for _, v := range pending {
			st.Blocks++
			st.Bytes += v.size
			s.m.ExpiredBlocks.Inc()
			s.m.ExpiredBytes.Add(float64(v.size))
		}
		pending = pending[:0]
		return nil
	}
	sctx, cancel := s.opContext(ctx)
	defer cancel()
	stop := errors.New("stop")
	err := s.scan(sctx, ageLo, ageHi, familyIndex, func(k, v []byte) error {
		last, bkey, err := rowkey.DecodeAgeKey(k[1:])
		if err != nil {
			return err
		}
		if last >= cutoff && (maxBytes <= 0 || dataBytes <= maxBytes) {
			return stop
		}
		size, err := rowkey.DecodeUint64(v)
		if err != nil {
			return err
		}
		bk, err := rowkey.DecodeBlockKey(bkey)
		if err != nil {
			return err
		}
		pending = append(pending, victim{ageKey: slices.Clone(k), blockKey: tkey(rowkey.TableBlocks, bkey),
			first: bk.First, last: last, size: int64(size)})
		dataBytes -= int64(size)
		if len(pending) >= chunk {
			return flush()
		}
		return nil
	})
	if err != nil && err != stop {
		return st, fmt.Errorf("expire: %w", err)
	}
	if err := flush(); err != nil {
		return st, fmt.Errorf("expire: %w", err)
	}
	if maxBytes > 0 {
		s.m.DataBytes.Set(float64(dataBytes))
	}
	return st, nil
}

// Close implements storage.BlockStore: it waits for running operations
// and closes the client. It is idempotent; every later call returns
// storage.ErrClosed.
func (s *Store) Close() error {
	s.state.Lock()
	defer s.state.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.client.Close()
	return nil
}
