package pebble

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

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
	if err := ctx.Err(); err != nil {
		return storage.ExpireStats{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	db, err := s.acquire()
	if err != nil {
		return storage.ExpireStats{}, err
	}
	defer s.release()
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(rowkey.TableBlockAge)},
		UpperBound: []byte{byte(rowkey.TableBlockAge) + 1},
	})
	if err != nil {
		return storage.ExpireStats{}, fmt.Errorf("expire: %w", err)
	}
	defer it.Close()
	x := &expiry{s: s, db: db, plan: plan.NewExpiry(olderThan, maxBytes, s.dataBytes), spans: make(plan.Spans), wb: db.NewBatch()}
	defer func() { x.wb.Close() }()
	return x.st, x.walk(ctx, it)
}

// expiry is one Expire run: the blocks it removes go into wb, committed
// every Config.ExpireBatchBlocks blocks with the spans they widen and the
// data size. The caller holds writeMu.
type expiry struct {
	s     *Store
	db    *pebble.DB
	plan  *plan.Expiry
	spans plan.Spans
	wb    *pebble.Batch
	// pending counts the blocks (and their bytes) in wb; st what earlier
	// commits removed.
	pending, pendBytes int64
	st                 storage.ExpireStats
}

// walk removes blocks in the age index's order until the plan stops.
func (x *expiry) walk(ctx context.Context, it *pebble.Iterator) error {
	for it.First(); it.Valid(); it.Next() {
		v, more, err := x.plan.Next(it.Key(), it.Value())
		if err != nil {
			return fmt.Errorf("expire: %w", err)
		}
		if !more {
			break
		}
		if err := x.remove(&v); err != nil {
			return err
		}
		if x.pending >= int64(x.s.cfg.ExpireBatchBlocks) {
			if err := x.flush(); err != nil {
				return fmt.Errorf("expire: %w", err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	if x.pending > 0 {
		if err := x.flush(); err != nil {
			return fmt.Errorf("expire: %w", err)
		}
	}
	return nil
}

// remove deletes a block and its age index row in wb.
func (x *expiry) remove(v *plan.Victim) error {
	if err := x.wb.Delete(v.AgeKey, nil); err != nil {
		return err
	}
	if err := x.wb.Delete(v.BlockKey, nil); err != nil {
		return err
	}
	x.spans.Add(v)
	x.pending++
	x.pendBytes += v.Size
	return nil
}

// flush commits wb with the widened spans and the data size, and starts
// a new batch.
func (x *expiry) flush() error {
	defer func() { x.wb.Close(); x.wb = x.db.NewBatch() }()
	if err := x.batchSpans(); err != nil {
		return err
	}
	dataBytes := x.plan.DataBytes
	if err := x.wb.Set(rowkey.TableKey(rowkey.TableMeta, metaDataBytes), rowkey.AppendUint64(nil, uint64(dataBytes)), nil); err != nil {
		return err
	}
	if err := x.s.commit(x.wb); err != nil {
		return err
	}
	x.s.dataBytes = dataBytes
	x.st.Blocks += x.pending
	x.st.Bytes += x.pendBytes
	x.s.m.Expired(x.pending, x.pendBytes)
	x.s.m.DataBytes.Set(float64(dataBytes))
	x.pending, x.pendBytes = 0, 0
	return nil
}

// batchSpans widens the stored removed span of every flow prefix of the
// pending blocks, in wb.
func (x *expiry) batchSpans() error {
	for prefix, sp := range x.spans {
		xk := plan.ExpiredKey([]byte(prefix))
		old, ok, err := x.s.get(x.db, xk)
		if err != nil {
			return err
		}
		if sp, _, err = plan.Widen(sp, old, ok); err != nil {
			return err
		}
		if err := x.wb.Set(xk, rowkey.AppendSpan(nil, sp), nil); err != nil {
			return err
		}
	}
	clear(x.spans)
	return nil
}
