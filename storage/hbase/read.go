package hbase

import (
	"context"
	"fmt"
	"time"

	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// DurableSeq implements storage.Writer.
func (s *Store) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	v, ok, err := s.get(ctx, plan.SeqKey(sensorID, epoch), familyIndex)
	if err != nil {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	if !ok {
		return 0, nil
	}
	return rowkey.DecodeUint64(v)
}

// LookupFlow implements storage.Reader: a Community ID is a prefix scan of
// the Community ID index, a flow ID one get.
func (s *Store) LookupFlow(ctx context.Context, id string, from, to time.Time) ([]storage.FlowRef, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	q, err := plan.NewLookup(id, from, to)
	if err != nil {
		return nil, err
	}
	if q.ByCommunity() {
		prefix := q.CommunityPrefix()
		err = s.scanRows(ctx, prefix, rowkey.PrefixEnd(prefix), familyIndex, func(cells []*hrpc.Cell) error {
			return keepCells(q, cells)
		})
	} else {
		err = s.keepFlowID(ctx, q)
	}
	if err != nil {
		return nil, q.Err(err)
	}
	return q.Result()
}

// keepCells passes the flow ref of a ref row's cells, if any, to q.
func keepCells(q *plan.Lookup, cells []*hrpc.Cell) error {
	var r storage.FlowRef
	ok, err := refFromCells(cells, &r)
	if ok {
		q.Keep(&r)
	}
	return err
}

// keepFlowID reads the flow ID row of a flow ID lookup.
func (s *Store) keepFlowID(ctx context.Context, q *plan.Lookup) error {
	r, ok, err := s.getRef(ctx, q.FlowIDKey())
	if ok {
		q.Keep(&r)
	}
	return err
}

// ScanBlocks implements storage.Reader with one bounded range scan, as
// the Pebble store does; the longest block span is re-read from the table
// so that blocks written through another collector are not missed.
func (s *Store) ScanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*storage.Block) error) error {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	span := s.maxSpan.Load()
	if !from.IsZero() {
		stored, err := s.readMaxSpan(ctx)
		if err != nil {
			return fmt.Errorf("read max span: %w", err)
		}
		span = max(span, stored)
	}
	p := s.layout.BlockScan(key, from, to, span)
	var blk storage.Block
	if err := s.scan(ctx, p.Lower, p.Upper, familyPackets, func(k, v []byte) error {
		in, err := p.Decode(k, v, &blk)
		if err != nil || !in {
			return err
		}
		return fn(&blk)
	}); err != nil {
		return fmt.Errorf("scan blocks: %w", err)
	}
	v, ok, err := s.get(ctx, p.ExpiredKey, familyIndex)
	if err != nil {
		return fmt.Errorf("read expired span: %w", err)
	}
	return p.Expired(v, ok)
}

// ScanRecords implements storage.Reader with the two range scans of the
// Pebble store (long flows by end time first, then every flow by start
// time).
func (s *Store) ScanRecords(ctx context.Context, from, to time.Time, fn func(*flow.Record) error) error {
	p, err := s.layout.RecordScan(from, to)
	if err != nil {
		return err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := s.scan(ctx, p.LongLower, p.LongUpper, familyIndex, func(_, v []byte) error {
		var r flow.Record
		if err := plan.DecodeRecord(v, &r); err != nil {
			return err
		}
		p.AddLong(&r)
		return nil
	}); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	if err := p.EmitEarlier(fn); err != nil {
		return err
	}
	return s.scanStarts(ctx, p, fn)
}

// scanStarts calls fn for the records of the start-time index that
// overlap the window, returning fn's error as is.
func (s *Store) scanStarts(ctx context.Context, p *plan.RecordScan, fn func(*flow.Record) error) error {
	var r flow.Record
	var fnErr error
	err := s.scanRows(ctx, p.StartLower, p.StartUpper, familyIndex, func(cells []*hrpc.Cell) error {
		if ok, err := recordFromCells(cells, &r); err != nil || !ok || !p.Overlaps(&r) {
			return err
		}
		fnErr = fn(&r)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	return nil
}
