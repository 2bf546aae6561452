package pebble

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"

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

// An `and` reads an operand after the first up to intersectFactor times
// the candidates so far, and at least minIntersect (see allCandidates): a
// candidate left in may cost a record table (24 bytes a record of its
// batch) and a record read, a pair of postings about a byte.
const (
	intersectFactor = 1024
	minIntersect    = 4096
)

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
	used, err := s.searchRecords(ctx, from, to, lookup, func(r *flow.Record, _ int64) error { return fn(r) })
	return used, s.readErr(err, fmt.Sprintf("flow search index %s..%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)))
}

// SearchRecordsOrdered is SearchRecords with, for each record, a floor:
// every record fn is called with afterwards starts at or after floor
// (Unix nanoseconds; math.MinInt64 while the long flows that started
// before the range come). Records come by start-time bucket, so a caller
// paging by start time may stop (fn returns an error) once its page is
// full and the floor passes its last row. The lookup's candidates are
// built span by span of hours in start order (see hourSpans), a span's
// postings read only once the records of the spans before it are
// emitted: a search that stops at its page reads the postings and the
// candidate records of the hours its page needs, not of every match.
func (s *Store) SearchRecordsOrdered(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(r *flow.Record, floor int64) error) (bool, error) {
	used, err := s.searchOrdered(ctx, from, to, lookup, fn)
	return used, s.readErr(err, fmt.Sprintf("flow search index %s..%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)))
}

// searchRange is what one search reads: the record scan's plan and the
// hours of the postings (from the window's start minus the long-flow
// span to its end).
type searchRange struct {
	p      *plan.RecordScan
	lo, hi uint32
}

// openSearch returns the database (release it after) and the range of a
// search, or ok false when the index cannot answer.
func (s *Store) openSearch(ctx context.Context, from, to time.Time, lookup flowindex.Lookup) (db *pebble.DB, sr searchRange, ok bool, err error) {
	if !s.indexReady.Load() || lookup == nil {
		return nil, sr, false, nil
	}
	if sr.p, err = s.layout.RecordScan(from, to); err != nil {
		return nil, sr, false, err
	}
	if db, err = s.begin(ctx); err != nil {
		return nil, sr, false, err
	}
	sr.lo = flowindex.HourOfNanos(rowkey.SubSat(from.UnixNano(), s.layout.Long))
	sr.hi = flowindex.Hour(to)
	return db, sr, true, nil
}

// firstCandidates returns the candidates of the hours lo..hi, or ok
// false (counted) when the lookup is not selective enough there.
func (s *Store) firstCandidates(ctx context.Context, db *pebble.DB, lookup flowindex.Lookup, lo, hi uint32) ([]recKey, bool, error) {
	refs, err := s.candidates(ctx, db, lookup, lo, hi, maxCandidates)
	if errors.Is(err, errTooMany) {
		s.index.notSelective.Inc()
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	cands, err := s.resolve(ctx, db, refs)
	if err != nil {
		return nil, false, err
	}
	s.index.searches.Inc()
	return cands, true, nil
}

// searchRecords reads every candidate of the range, then emits them.
func (s *Store) searchRecords(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(*flow.Record, int64) error) (bool, error) {
	db, sr, ok, err := s.openSearch(ctx, from, to, lookup)
	if !ok || err != nil {
		return false, err
	}
	defer s.release()
	cands, ok, err := s.firstCandidates(ctx, db, lookup, sr.lo, sr.hi)
	if !ok || err != nil {
		return false, err
	}
	s.index.candidates.Observe(float64(len(cands)))
	if err := s.emitLong(ctx, db, sr.p, "search long records", func(r *flow.Record) error { return fn(r, math.MinInt64) }); err != nil {
		return true, err
	}
	return true, s.emitCandidates(ctx, db, sr.p, cands, fn)
}

// searchOrdered emits the long flows that started earlier, then the
// candidates span by span of hours. Only the first span's lookup decides
// whether the index answers (past maxCandidates there the caller scans);
// a later span past the cap is read whole (what was emitted cannot be
// taken back), at a cost bounded by that span.
func (s *Store) searchOrdered(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(*flow.Record, int64) error) (bool, error) {
	db, sr, ok, err := s.openSearch(ctx, from, to, lookup)
	if !ok || err != nil {
		return false, err
	}
	defer s.release()
	spans := hourSpans(sr.lo, sr.hi, s.layout.Bucket)
	cands, ok, err := s.firstCandidates(ctx, db, lookup, spans[0][0], spans[0][1])
	if !ok || err != nil {
		return false, err
	}
	total := len(cands)
	defer func() { s.index.candidates.Observe(float64(total)) }()
	if err := s.emitLong(ctx, db, sr.p, "search long records", func(r *flow.Record) error { return fn(r, math.MinInt64) }); err != nil {
		return true, err
	}
	for i := 0; ; i++ {
		if err := s.emitCandidates(ctx, db, sr.p, cands, fn); err != nil {
			return true, err
		}
		if i+1 == len(spans) {
			return true, nil
		}
		if cands, err = s.spanCandidates(ctx, db, lookup, spans[i+1]); err != nil {
			return true, err
		}
		total += len(cands)
	}
}

// spanCandidates returns the candidates of a span after the first: those
// of the lookup under the cap, else every one (see searchOrdered).
func (s *Store) spanCandidates(ctx context.Context, db *pebble.DB, l flowindex.Lookup, span [2]uint32) ([]recKey, error) {
	refs, err := s.candidates(ctx, db, l, span[0], span[1], maxCandidates)
	if errors.Is(err, errTooMany) {
		refs, err = s.candidates(ctx, db, l, span[0], span[1], math.MaxInt)
	}
	if err != nil {
		return nil, err
	}
	return s.resolve(ctx, db, refs)
}

// hourSpans splits the hours lo..hi into spans, in order, each ending
// where a record key time bucket of width bucket (ns) ends, so that the
// record keys of a span all sort before those of the next: every hour is
// a span for buckets dividing an hour (a minute by default); other
// widths make spans of several hours, or one span of all.
func hourSpans(lo, hi uint32, bucket int64) [][2]uint32 {
	var out [][2]uint32
	start := lo
	for h := lo; h < hi; h++ {
		if bucketEdge(h+1, bucket) {
			out = append(out, [2]uint32{start, h})
			start = h + 1
		}
	}
	return append(out, [2]uint32{start, hi})
}

// bucketEdge reports whether the start of hour h is a bucket boundary.
func bucketEdge(h uint32, bucket int64) bool {
	const hourNs = int64(time.Hour)
	if bucket <= 0 || int64(h) > math.MaxInt64/hourNs {
		return false
	}
	return int64(h)*hourNs%bucket == 0
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

// candidates returns the sorted, distinct postings' records the lookup
// yields from hour lo to hour hi, or errTooMany past limit. They stay
// (batch, ordinal) pairs: intersecting and uniting them needs no record
// table, resolve reads the tables of those that remain.
func (s *Store) candidates(ctx context.Context, db *pebble.DB, l flowindex.Lookup, lo, hi uint32, limit int) ([]posRef, error) {
	switch l := l.(type) {
	case flowindex.Term:
		return s.termCandidates(ctx, db, l, lo, hi, limit)
	case flowindex.Any:
		var out []posRef
		for _, x := range l {
			c, err := s.candidates(ctx, db, x, lo, hi, limit)
			if err != nil {
				return nil, err
			}
			out = append(out, c...)
			if len(out)/2 > limit { // not 2*limit: the uncapped limit of a later span is math.MaxInt
				return nil, errTooMany
			}
		}
		out = sortRefs(out)
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
// under a limit (a broader operand is left out: the others' candidates
// are checked by the query anyway): the caller's for the first, then
// intersectFactor times the smallest set so far (at least minIntersect).
// Intersecting (batch, ordinal) pairs costs an operand's postings only,
// and every candidate it removes is a record (and maybe a record table)
// not read: an operand far broader than the set costs more to read than
// the records it would remove.
func (s *Store) allCandidates(ctx context.Context, db *pebble.DB, l flowindex.All, lo, hi uint32, limit int) ([]posRef, error) {
	var best []posRef
	found := false
	for _, x := range l {
		opLimit := limit
		if found {
			opLimit = min(limit, max(len(best)*intersectFactor, minIntersect))
		}
		c, err := s.candidates(ctx, db, x, lo, hi, opLimit)
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
		if len(best) == 0 {
			return best, nil
		}
	}
	if !found {
		return nil, errTooMany
	}
	return best, nil
}

// termCandidates reads the term's postings hour by hour (not the record
// tables they point into: see resolve).
func (s *Store) termCandidates(ctx context.Context, db *pebble.DB, t flowindex.Term, lo, hi uint32, limit int) ([]posRef, error) {
	var out []posRef
	for _, rg := range t.Ranges(lo, hi) {
		err := s.each(ctx, db, rg.Lower, rg.Upper, false, "search index", func(k, v []byte) error {
			s.index.postingsRead.Inc()
			seq, err := flowindex.PostingSeq(k)
			if err == nil {
				err = flowindex.EachOrdinal(k, v, func(ord uint64) error {
					out = append(out, posRef{seq: seq, ord: ord})
					if len(out) > limit {
						return errTooMany
					}
					return nil
				})
			}
			if err != nil && !errors.Is(err, errTooMany) {
				return corruptIndex(err)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return sortRefs(out), nil
}

// resolve returns the sorted, distinct record keys of the candidates
// (sorted by batch), reading the record table of each of their batches
// once: a batch whose postings no candidate survived from is not read.
// (A record reported again has postings in both batches, the later with
// every term of the stored record: intersecting within batches loses no
// match.)
func (s *Store) resolve(ctx context.Context, db *pebble.DB, refs []posRef) ([]recKey, error) {
	out := make([]recKey, 0, len(refs))
	for i := 0; i < len(refs); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		seq := refs[i].seq
		table, err := s.recordTable(db, seq)
		if err != nil {
			return nil, err
		}
		for ; i < len(refs) && refs[i].seq == seq; i++ {
			rk, err := flowindex.RecordKeyAt(table, refs[i].ord)
			if err != nil {
				return nil, corruptIndex(fmt.Errorf("batch %d: %w", seq, err))
			}
			out = append(out, recKey(rk))
		}
	}
	return sortUnique(out), nil
}

// recordTable reads the record table of batch seq.
func (s *Store) recordTable(db *pebble.DB, seq uint64) ([]byte, error) {
	t, ok, err := s.get(db, flowindex.BatchKey(seq))
	if err != nil {
		return nil, fmt.Errorf("search index: record table %d: %w", seq, err)
	}
	if !ok {
		return nil, corruptIndex(fmt.Errorf("search index postings point to a missing record table %d", seq))
	}
	s.search.tablesRead.Inc()
	return t, nil
}

// corruptIndex wraps an error found in the index as storage.ErrCorrupt.
func corruptIndex(err error) error {
	return fmt.Errorf("%w: %w (rebuild it: tapir-collector reindex)", storage.ErrCorrupt, err)
}

// posRef is a candidate before resolve: record ord of the record table
// of batch seq.
type posRef struct{ seq, ord uint64 }

func comparePosRef(a, b posRef) int {
	if c := cmp.Compare(a.seq, b.seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ord, b.ord)
}

// sortRefs sorts the candidates by batch and ordinal and drops repeats.
func sortRefs(rs []posRef) []posRef {
	slices.SortFunc(rs, comparePosRef)
	return slices.Compact(rs)
}

func sortUnique(ks []recKey) []recKey {
	slices.SortFunc(ks, func(a, b recKey) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ks)
}

// intersect returns the candidates in both sorted sets.
func intersect(a, b []posRef) []posRef {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := comparePosRef(a[i], b[j]); {
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

// searchMetrics counts what searches read besides postings and records.
type searchMetrics struct {
	// tablesRead counts the record tables searches read to resolve
	// their candidates.
	tablesRead prometheus.Counter
}

func newSearchMetrics() searchMetrics {
	return searchMetrics{tablesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_pebble_search_index_record_tables_read_total",
		Help: "Record tables (a write batch's record keys) flow searches read to resolve the candidates left after intersecting postings."})}
}

func (m *searchMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.tablesRead}
}
