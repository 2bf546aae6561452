package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

var _ storage.Searcher = (*Store)(nil)

// maxCandidates bounds the records an index lookup may yield: past it,
// fetching them one by one costs more than scanning the window, and
// SearchRecords lets the caller scan.
const maxCandidates = 1 << 19

// errTooMany stops a lookup that yields more than its limit.
var errTooMany = errors.New("index lookup not selective")

// recKey is a record row key without its table byte.
type recKey [flowindex.RecordKeyLen]byte

// SearchRecords implements storage.Searcher with the postings of
// storage/flowindex (written in the batch of each record): the lookup's
// postings of the hours the record scan covers give candidate record
// keys, read in key order after the long flows that started earlier (as
// ScanRecords does). A corruption error wraps storage.ErrCorrupt.
func (s *Store) SearchRecords(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(*flow.Record) error) (bool, error) {
	return s.SearchRecordsOrdered(ctx, from, to, lookup, func(r *flow.Record, _ int64) error { return fn(r) })
}

// SearchRecordsOrdered is SearchRecords with, for each record, a floor:
// every record fn is called with afterwards starts at or after floor
// (Unix nanoseconds; math.MinInt64 while the long flows that started
// before the range come). Records come by start-time bucket, so a caller
// paging by start time may stop (fn returns an error) once its page is
// full and the floor passes its last row: candidates are then read in
// proportion to the page, not to the matches.
func (s *Store) SearchRecordsOrdered(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(r *flow.Record, floor int64) error) (bool, error) {
	used, err := s.searchRecords(ctx, from, to, lookup, fn)
	return used, s.readErr(err, fmt.Sprintf("flow search index %s..%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)))
}

func (s *Store) searchRecords(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(*flow.Record, int64) error) (bool, error) {
	if !s.indexReady.Load() || lookup == nil {
		return false, nil
	}
	p, err := s.layout.RecordScan(from, to)
	if err != nil {
		return false, err
	}
	db, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer s.release()
	lo := flowindex.HourOfNanos(rowkey.SubSat(from.UnixNano(), s.layout.Long))
	hi := flowindex.Hour(to)
	cands, err := s.candidates(ctx, db, lookup, lo, hi, maxCandidates)
	if errors.Is(err, errTooMany) {
		s.index.notSelective.Inc()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.index.searches.Inc()
	s.index.candidates.Observe(float64(len(cands)))
	if err := s.emitLong(ctx, db, p, "search long records", func(r *flow.Record) error { return fn(r, math.MinInt64) }); err != nil {
		return true, err
	}
	return true, s.emitCandidates(ctx, db, p, cands, fn)
}

// emitLong reads the long-flow index (op names the read in errors) and
// emits the long flows that started before the start-time range; the
// caller matches them.
func (s *Store) emitLong(ctx context.Context, db *pebble.DB, p *plan.RecordScan, op string, fn func(*flow.Record) error) error {
	if err := s.each(ctx, db, p.LongLower, p.LongUpper, false, op, func(_, v []byte) error {
		var r flow.Record
		if err := decodeScanned(v, &r); err != nil {
			return err
		}
		p.AddLong(&r)
		return nil
	}); err != nil {
		return err
	}
	return p.EmitEarlier(fn)
}

// emitCandidates reads the candidate records inside the start-time range
// in key order with one iterator and emits those overlapping the window,
// each with its start-time bucket as the floor (keys start with it).
func (s *Store) emitCandidates(ctx context.Context, db *pebble.DB, p *plan.RecordScan, cands []recKey, fn func(*flow.Record, int64) error) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p.StartLower, UpperBound: p.StartUpper})
	if err != nil {
		return fmt.Errorf("search records: %w", err)
	}
	key := make([]byte, 1+flowindex.RecordKeyLen)
	key[0] = byte(rowkey.TableRecords)
	var r flow.Record
	for i := range cands {
		if err := ctx.Err(); err != nil {
			_ = s.closeIter(it)
			return err
		}
		copy(key[1:], cands[i][:])
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			if err := it.Error(); err != nil { // a seek clears the error: look now
				_ = s.closeIter(it)
				return fmt.Errorf("search records: %w", err)
			}
			continue // outside the range
		}
		s.index.reads.Inc()
		if err := decodeScanned(it.Value(), &r); err != nil {
			_ = s.closeIter(it)
			return err
		}
		if !p.Overlaps(&r) {
			continue
		}
		if err := fn(&r, rowkey.DecodeTime(cands[i][:])); err != nil {
			_ = s.closeIter(it)
			return err
		}
	}
	if err := s.closeIter(it); err != nil {
		return fmt.Errorf("search records: %w", err)
	}
	return nil
}

// candidates returns the sorted, distinct record keys the lookup yields
// from hour lo to hour hi, or errTooMany past limit.
func (s *Store) candidates(ctx context.Context, db *pebble.DB, l flowindex.Lookup, lo, hi uint32, limit int) ([]recKey, error) {
	switch l := l.(type) {
	case flowindex.Term:
		return s.termCandidates(ctx, db, l, lo, hi, limit)
	case flowindex.Any:
		var out []recKey
		for _, x := range l {
			c, err := s.candidates(ctx, db, x, lo, hi, limit)
			if err != nil {
				return nil, err
			}
			out = append(out, c...)
			if len(out) > 2*limit {
				return nil, errTooMany
			}
		}
		out = sortUnique(out)
		if len(out) > limit {
			return nil, errTooMany
		}
		return out, nil
	case flowindex.All:
		return s.allCandidates(ctx, db, l, lo, hi, limit)
	}
	return nil, fmt.Errorf("search: unknown index lookup %T", l)
}

// allCandidates intersects the candidates of the operands that stay
// under the limit, each operand limited by the smallest set so far (a
// broad operand is abandoned early: the others' candidates are checked
// by the query anyway).
func (s *Store) allCandidates(ctx context.Context, db *pebble.DB, l flowindex.All, lo, hi uint32, limit int) ([]recKey, error) {
	var best []recKey
	found := false
	for _, x := range l {
		c, err := s.candidates(ctx, db, x, lo, hi, limit)
		if errors.Is(err, errTooMany) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !found {
			best, found = c, true
		} else {
			best = intersect(best, c)
		}
		limit = max(len(best), 1)
	}
	if !found {
		return nil, errTooMany
	}
	return best, nil
}

// termCandidates reads the term's postings hour by hour, and the record
// tables they point into.
func (s *Store) termCandidates(ctx context.Context, db *pebble.DB, t flowindex.Term, lo, hi uint32, limit int) ([]recKey, error) {
	var out []recKey
	tables := map[uint64][]byte{}
	for _, rg := range t.Ranges(lo, hi) {
		err := s.each(ctx, db, rg.Lower, rg.Upper, false, "search index", func(k, v []byte) error {
			table, err := s.recordTable(db, tables, k)
			if err != nil {
				return err
			}
			err = flowindex.EachRecordKey(k, v, table, func(rk []byte) error {
				out = append(out, recKey(rk))
				if len(out) > limit {
					return errTooMany
				}
				return nil
			})
			if err != nil && !errors.Is(err, errTooMany) {
				return fmt.Errorf("%w: %w (rebuild it: tapir-collector reindex)", storage.ErrCorrupt, err)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return sortUnique(out), nil
}

// recordTable returns the record table a posting points into, read once
// per lookup.
func (s *Store) recordTable(db *pebble.DB, tables map[uint64][]byte, posting []byte) ([]byte, error) {
	seq, err := flowindex.PostingSeq(posting)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (rebuild it: tapir-collector reindex)", storage.ErrCorrupt, err)
	}
	if t, ok := tables[seq]; ok {
		return t, nil
	}
	t, ok, err := s.get(db, flowindex.BatchKey(seq))
	if err != nil {
		return nil, fmt.Errorf("search index: record table %d: %w", seq, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: search index posting %x points to a missing record table (rebuild it: tapir-collector reindex)", storage.ErrCorrupt, posting)
	}
	tables[seq] = t
	return t, nil
}

func sortUnique(ks []recKey) []recKey {
	slices.SortFunc(ks, func(a, b recKey) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ks)
}

// intersect returns the keys in both sorted sets.
func intersect(a, b []recKey) []recKey {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := bytes.Compare(a[i][:], b[j][:]); {
		case c == 0:
			out = append(out, a[i])
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
	return out
}
