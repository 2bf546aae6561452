package pebble

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// DurableSeq implements storage.Writer.
func (s *Store) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	db, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	var v int64
	if err := s.getInt(db, plan.SeqKey(sensorID, epoch), &v); err != nil {
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
	db, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	q, err := plan.NewLookup(id, from, to)
	if err != nil {
		return nil, err
	}
	if q.ByCommunity() {
		prefix, keep := q.CommunityPrefix(), s.keepCommunity
		if s.orderedFlowIDs {
			prefix, keep = q.CommunityHashPrefix(), s.keepCommunityHash
		}
		err = s.each(ctx, db, prefix, rowkey.PrefixEnd(prefix), true, "lookup "+id, func(k, v []byte) error {
			if err := keep(db, q, k, v); err != nil {
				return q.Err(err)
			}
			return nil
		})
	} else if err = s.keepFlowID(db, q); err != nil {
		err = q.Err(err)
	}
	if err != nil {
		return nil, err
	}
	return q.Result()
}

// keepCommunity keeps the flow ref of a Community ID row (key k, value
// v): its value, or, for a key-only row (stores with merged flow refs, see
// batchRefs), its flow's flow ID row.
func (s *Store) keepCommunity(db *pebble.DB, q *plan.Lookup, k, v []byte) error {
	if len(v) > 0 {
		return q.KeepValue(v)
	}
	_, id, err := rowkey.DecodeCommunityKey(k[1:])
	if err != nil {
		return err
	}
	fv, err := s.pointedFlowRow(db, k, id)
	if err != nil {
		return err
	}
	return q.KeepValue(fv)
}

// keepCommunityHash keeps the flow ref of a short Community ID row (key
// k): its flow's flow ID row, when that flow's Community ID is the one
// looked up.
func (s *Store) keepCommunityHash(db *pebble.DB, q *plan.Lookup, k, _ []byte) error {
	_, id, err := rowkey.DecodeCommunityHashKey(k[1:])
	if err != nil {
		return err
	}
	fv, err := s.pointedFlowRow(db, k, id)
	if err != nil {
		return err
	}
	return q.KeepValueOfCommunity(fv)
}

// pointedFlowRow reads the flow ID row of flow id, which the Community ID
// row k points at; a missing one is corruption.
func (s *Store) pointedFlowRow(db *pebble.DB, k []byte, id flow.ID) ([]byte, error) {
	fv, ok, err := s.get(db, s.flowIDKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: Community ID row %x without its flow ID row", storage.ErrCorrupt, k)
	}
	return fv, nil
}

// keepFlowID reads the flow ID row of a flow ID lookup.
func (s *Store) keepFlowID(db *pebble.DB, q *plan.Lookup) error {
	v, ok, err := s.get(db, s.flowIDKey(q.FlowID()))
	if err != nil || !ok {
		return err
	}
	return q.KeepValue(v)
}

// ScanBlocks implements storage.Reader with one bounded range scan: from
// (salt, key, bucket of from minus the longest block span ever written) to
// (salt, key, bucket after to).
// A corruption error wraps storage.ErrCorrupt and names the flow key.
func (s *Store) ScanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	return s.readErr(s.scanBlocks(ctx, key, from, to, fn), "packet blocks of flow "+key.String())
}

func (s *Store) scanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	db, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	p := s.layout.BlockScan(key, from, to, s.maxSpan.Load())
	var blk storage.Block
	if err := s.each(ctx, db, p.Lower, p.Upper, true, "scan blocks", func(k, v []byte) error {
		in, err := p.Decode(k, v, &blk)
		if err != nil {
			return fmt.Errorf("scan blocks: %w", err)
		}
		if !in {
			return nil
		}
		return fn(&blk)
	}); err != nil {
		return err
	}
	v, ok, err := s.get(db, p.ExpiredKey)
	if err != nil {
		return fmt.Errorf("read expired span: %w", err)
	}
	return p.Expired(v, ok)
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
	p, err := s.layout.RecordScan(from, to)
	if err != nil {
		return err
	}
	db, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	if err := s.emitLong(ctx, db, p, "scan records", fn); err != nil {
		return err
	}
	var r flow.Record
	return s.each(ctx, db, p.StartLower, p.StartUpper, false, "scan records", func(_, v []byte) error {
		if err := decodeScanned(v, &r); err != nil || !p.Overlaps(&r) {
			return err
		}
		return fn(&r)
	})
}

// decodeScanned decodes a record row that ScanRecords read.
func decodeScanned(v []byte, r *flow.Record) error {
	if err := plan.DecodeRecord(v, r); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	return nil
}

// each calls fn with the key and value of every row in [lower, upper),
// in key order; fn's slices are valid during the call only. With prefix,
// lower starts with the prefix of every row of the range and the scan
// seeks with its bloom filters (see first). It stops at fn's first error
// or when ctx is done and returns that error as is; its own errors (the
// iterator's) are wrapped with what.
func (s *Store) each(ctx context.Context, db *pebble.DB, lower, upper []byte, prefix bool, what string, fn func(k, v []byte) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if prefix {
		s.first(it, lower)
	} else {
		it.First()
	}
	for ; it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			_ = s.closeIter(it)
			return err
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			_ = s.closeIter(it)
			return err
		}
	}
	if err := s.closeIter(it); err != nil {
		return fmt.Errorf("%s: %w", what, err)
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
