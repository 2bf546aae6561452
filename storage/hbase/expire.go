package hbase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// expireChunk is how many blocks Expire removes at once.
const expireChunk = 512

// errStop ends the retention index scan where the plan stops.
var errStop = errors.New("stop")

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
	var dataBytes int64
	if maxBytes > 0 {
		var err error
		if dataBytes, err = s.sumSizes(ctx); err != nil {
			return st, fmt.Errorf("expire: sum sizes: %w", err)
		}
		s.m.DataBytes.Set(float64(dataBytes))
	}
	e := plan.NewExpiry(olderThan, maxBytes, dataBytes)
	if err := s.walkAge(ctx, e, &st); err != nil {
		return st, fmt.Errorf("expire: %w", err)
	}
	if maxBytes > 0 {
		s.m.DataBytes.Set(float64(e.DataBytes))
	}
	return st, nil
}

// ageRange returns the bounds of the retention index.
func ageRange() (lo, hi []byte) {
	return []byte{byte(rowkey.TableBlockAge)}, []byte{byte(rowkey.TableBlockAge) + 1}
}

// sumSizes returns the sum of the block sizes in the retention index.
func (s *Store) sumSizes(ctx context.Context) (int64, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var total int64
	lo, hi := ageRange()
	err := s.scan(ctx, lo, hi, familyIndex, func(_, v []byte) error {
		size, err := rowkey.DecodeUint64(v)
		total += int64(size)
		return err
	})
	return total, err
}

// walkAge scans the retention index, removing the blocks the plan
// chooses, expireChunk at a time, and counts them in st.
func (s *Store) walkAge(ctx context.Context, e *plan.Expiry, st *storage.ExpireStats) error {
	var pending []plan.Victim
	sctx, cancel := s.opContext(ctx)
	defer cancel()
	lo, hi := ageRange()
	err := s.scan(sctx, lo, hi, familyIndex, func(k, v []byte) error {
		vic, more, err := e.Next(k, v)
		if err != nil {
			return err
		}
		if !more {
			return errStop
		}
		vic.AgeKey = slices.Clone(k)
		pending = append(pending, vic)
		if len(pending) < expireChunk {
			return nil
		}
		err = s.removeBlocks(ctx, pending, st)
		pending = pending[:0]
		return err
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return s.removeBlocks(ctx, pending, st)
}

// removeBlocks widens the removed spans of the victims' flow keys, then
// deletes their blocks and retention index rows, and counts them in st.
func (s *Store) removeBlocks(ctx context.Context, victims []plan.Victim, st *storage.ExpireStats) error {
	if len(victims) == 0 {
		return nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	spans := make(plan.Spans)
	for i := range victims {
		spans.Add(&victims[i])
	}
	if err := s.widenSpans(ctx, spans); err != nil {
		return fmt.Errorf("widen removed spans: %w", err)
	}
	if err := s.parallel(len(victims), func(i int) error {
		if err := s.del(ctx, victims[i].BlockKey); err != nil {
			return err
		}
		return s.del(ctx, victims[i].AgeKey)
	}); err != nil {
		return fmt.Errorf("delete blocks: %w", err)
	}
	var bytes int64
	for i := range victims {
		bytes += victims[i].Size
	}
	st.Blocks += int64(len(victims))
	st.Bytes += bytes
	s.m.Expired(int64(len(victims)), bytes)
	return nil
}

// widenSpans widens the stored removed span of each flow prefix of spans,
// concurrently.
func (s *Store) widenSpans(ctx context.Context, spans plan.Spans) error {
	prefixes := make([]string, 0, len(spans))
	for p := range spans {
		prefixes = append(prefixes, p)
	}
	return s.parallel(len(prefixes), func(i int) error {
		return s.widenSpan(ctx, prefixes[i], spans[prefixes[i]])
	})
}

// widenSpan widens the removed span row of a flow prefix with sp, with a
// check-and-put loop (another collector may widen it at the same time).
func (s *Store) widenSpan(ctx context.Context, prefix string, sp rowkey.Span) error {
	xk := plan.ExpiredKey([]byte(prefix))
	for {
		old, ok, err := s.get(ctx, xk, familyIndex)
		if err != nil {
			return err
		}
		nsp, changed, err := plan.Widen(sp, old, ok)
		if err != nil || !changed {
			return err
		}
		var expect []byte
		if ok {
			expect = old
		}
		done, err := s.checkAndPut(ctx, xk, familyIndex, rowkey.AppendSpan(nil, nsp), expect)
		if err != nil || done {
			return err
		}
	}
}
