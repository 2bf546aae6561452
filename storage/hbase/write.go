package hbase

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// markerValue is the dedupe marker's cell: HBase's check-and-put treats an
// empty cell like a missing one, so the marker must not be empty.
var markerValue = []byte{1}

// Write implements storage.Writer (see the package comment for how a
// batch is applied without multi-row transactions). It returns only after
// HBase acknowledged every row of the batch.
func (s *Store) Write(ctx context.Context, b *storage.Batch) (applied bool, err error) {
	p, err := s.layout.Plan(b)
	if err != nil {
		return false, err
	}
	start := time.Now()
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	defer func() {
		if err != nil {
			s.m.WriteErrors.Inc()
		}
	}()
	if _, seen, err := s.get(ctx, p.DedupeKey, familyIndex); err != nil {
		return false, fmt.Errorf("read dedupe marker: %w", err)
	} else if seen {
		s.m.Deduplicated.Inc()
		return false, nil
	}
	records, err := s.writeRows(ctx, b, p)
	if err != nil {
		return false, err
	}
	return s.markApplied(ctx, b, p, records, start)
}

// writeRows puts every row of the planned batch (blocks, flow index,
// records; the longest span first) and returns how many records it
// stored.
func (s *Store) writeRows(ctx context.Context, b *storage.Batch, p *plan.Batch) (int64, error) {
	// Every record is added to the refs: an older segment's span lies
	// within the newer one's (same start, earlier end), so adding a record
	// that mergeRecord later finds superseded never widens a ref beyond
	// what the stored records cover.
	for _, r := range p.Records {
		p.Refs.Add(plan.RecordRef(r))
	}
	rows := blockPuts(p)
	refRows, err := s.batchRefRows(ctx, p.Refs)
	if err != nil {
		return 0, fmt.Errorf("write batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	rows = append(rows, refRows...)
	if err := s.raiseMaxSpan(ctx, p.MaxSpan); err != nil {
		return 0, fmt.Errorf("raise max span: %w", err)
	}
	rows, long, err := s.recordPuts(rows, p.Records)
	if err != nil {
		return 0, err
	}
	merged, err := s.putAll(ctx, rows, long)
	if err != nil {
		return 0, fmt.Errorf("write batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	return int64(len(p.Records)-len(long)) + merged, nil
}

// blockPuts returns the puts of the batch's block rows and their
// retention index rows.
func blockPuts(p *plan.Batch) []cellPut {
	rows := make([]cellPut, 0, 2*len(p.Blocks))
	for i := range p.Blocks {
		row := &p.Blocks[i]
		rows = append(rows,
			cellPut{key: row.Key, family: familyPackets, cells: map[string][]byte{qualifier: row.AppendValue(nil)}},
			cellPut{key: row.AgeKey(), family: familyIndex, cells: map[string][]byte{qualifier: row.AgeValue()}})
	}
	return rows
}

// raiseMaxSpan makes the store's longest block span at least span. It
// must be durable before any block that needs it is visible, or a window
// scan could start too late and miss it.
func (s *Store) raiseMaxSpan(ctx context.Context, span int64) error {
	if span <= s.maxSpan.Load() {
		return nil
	}
	if err := s.raise(ctx, rowkey.TableKey(rowkey.TableMeta, metaMaxSpan), uint64(span)); err != nil {
		return err
	}
	for cur := s.maxSpan.Load(); span > cur && !s.maxSpan.CompareAndSwap(cur, span); cur = s.maxSpan.Load() {
	}
	return nil
}

// recordPuts appends to rows the plain puts of the records that are not
// long (see qualifierSegment), and returns the long ones apart: they are
// merged in place (mergeRecord).
func (s *Store) recordPuts(rows []cellPut, recs []*flow.Record) ([]cellPut, []*flow.Record, error) {
	var long []*flow.Record
	for _, r := range recs {
		if s.layout.IsLong(r) {
			long = append(long, r)
			continue
		}
		p, err := s.shortRecordPut(r)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, p)
	}
	return rows, long, nil
}

// putAll writes rows (plain puts, the flow index rows too: see refs.go)
// and merges the long records, all at once, and returns how many of
// those it stored.
func (s *Store) putAll(ctx context.Context, rows []cellPut, long []*flow.Record) (int64, error) {
	var merged atomic.Int64
	err := s.parallel(len(rows)+len(long), func(i int) error {
		if i >= len(rows) {
			stored, err := s.mergeRecord(ctx, long[i-len(rows)])
			if stored {
				merged.Add(1)
			}
			return err
		}
		return s.put(ctx, &rows[i])
	})
	return merged.Load(), err
}

// markApplied creates the batch's dedupe marker (only one writer wins
// it) and raises the sensor's durable sequence; applied is true for the
// winner.
func (s *Store) markApplied(ctx context.Context, b *storage.Batch, p *plan.Batch, records int64, start time.Time) (bool, error) {
	won, err := s.checkAndPut(ctx, p.DedupeKey, familyIndex, markerValue, nil)
	if err != nil {
		return false, fmt.Errorf("write dedupe marker %s/%d: %w", b.SensorID, b.Seq, err)
	}
	if !won {
		s.m.Deduplicated.Inc()
		return false, nil
	}
	if err := s.raise(ctx, p.SeqKey, b.Seq); err != nil {
		// The batch is applied (its marker is durable); the sequence only
		// lags until the next batch raises it. Report it all the same so
		// the sensor resends, which the marker turns into a no-op.
		return false, fmt.Errorf("raise durable seq of %s to %d: %w", b.SensorID, b.Seq, err)
	}
	s.m.Wrote(int64(len(p.Blocks)), p.Bytes, records, start)
	return true, nil
}
