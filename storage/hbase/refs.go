package hbase

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Flow index rows (TableFlowID, TableCommunity) are written without any
// read or check-and-put: HBase keeps, of every column, the cell with the
// highest timestamp, so a put whose timestamp orders like its value is a
// "max" that commutes with every other writer's. Each ref row has three
// columns in family "i":
//
//   - "v": the flow ref (storage/rowkey AppendRef) as this writer saw it,
//     at timestamp tsComplete, or tsIncomplete when it has no Community
//     ID (so a complete one always wins). Both are below any clock, so
//     a "v" merged by the check-and-put loops of earlier versions (at the
//     server's clock) stays visible;
//   - "h": Last (8 bytes, Unix ns) at timestamp tsHigh(Last): the latest;
//   - "l": First at timestamp tsLow(First): the earliest.
//
// A reader widens "v" with "l" and "h" (refFromCells). Rows written
// before this layout hold only "v" (merged with check-and-put loops), and
// read the same way.
const (
	qualifierLow  = "l"
	qualifierHigh = "h"
	// tsIncomplete is the timestamp of a "v" cell without a Community
	// ID, tsComplete of one with.
	tsIncomplete = 1
	tsComplete   = 2
	// tsBase is the lowest timestamp of an "l" or "h" cell.
	tsBase = 4
)

// tsHigh maps a time (Unix ns) to an HBase timestamp in the same order.
// Times before 1970 all map to the lowest one (they are not ordered
// among each other; sensors do not capture them).
func tsHigh(ns int64) uint64 {
	return uint64(max(ns, 0)) + tsBase
}

// tsLow maps a time to an HBase timestamp in the reverse order, so the
// earliest time has the highest timestamp.
func tsLow(ns int64) uint64 {
	return uint64(math.MaxInt64-tsBase) - uint64(min(max(ns, 0), math.MaxInt64-2*tsBase))
}

// cellPut is one put of a Write: cells of one row and family, at an
// explicit timestamp (0: the region server's clock). mark, when set, is
// what the put makes durable in a ref row, noted in the Store's refPut
// cache once HBase acknowledged it.
type cellPut struct {
	key    []byte
	family string
	cells  map[string][]byte
	ts     uint64
	mark   *refMark
}

// refPuts returns the puts that widen the ref row at key with r, leaving
// out those that this store has had acknowledged already (a flow's
// blocks come in many batches; its "v" cell is the same each time, and
// "l" and "h" only change when they widen).
func (s *Store) refPuts(key []byte, r *storage.FlowRef) []cellPut {
	done := s.refPut.get(key)
	vts := uint64(tsComplete)
	if r.CommunityID == "" {
		vts = tsIncomplete
	}
	var out []cellPut
	if done.vts < vts {
		out = append(out, cellPut{key: key, family: familyIndex, ts: vts, mark: &refMark{vts: vts},
			cells: map[string][]byte{qualifier: rowkey.AppendRef(nil, r)}})
	}
	if !r.Last.IsZero() && (done.last == 0 || r.Last.UnixNano() > done.last) {
		last := r.Last.UnixNano()
		out = append(out, cellPut{key: key, family: familyIndex, ts: tsHigh(last), mark: &refMark{last: last},
			cells: map[string][]byte{qualifierHigh: rowkey.AppendUint64(nil, uint64(last))}})
	}
	if !r.First.IsZero() && (done.first == 0 || r.First.UnixNano() < done.first) {
		first := r.First.UnixNano()
		out = append(out, cellPut{key: key, family: familyIndex, ts: tsLow(first), mark: &refMark{first: first},
			cells: map[string][]byte{qualifierLow: rowkey.AppendUint64(nil, uint64(first))}})
	}
	return out
}

// refMark is what a ref row holds durably at least, as far as this store
// knows: its "v" cell's timestamp (0: none yet), and the earliest First
// and latest Last put (0: none).
type refMark struct {
	vts         uint64
	first, last int64
}

// refPutCache remembers the refMark of recently written ref rows. Rows
// are never narrowed (puts only widen, retention keeps the flow index),
// so skipping a put the mark covers loses nothing; when full the cache is
// emptied and the next batches put those cells again.
type refPutCache struct {
	mu   sync.Mutex
	max  int
	rows map[string]refMark
}

func newRefPutCache(max int) *refPutCache {
	return &refPutCache{max: max, rows: make(map[string]refMark)}
}

func (c *refPutCache) get(key []byte) refMark {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rows[string(key)]
}

// add merges m into key's mark.
func (c *refPutCache) add(key []byte, m *refMark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.rows[string(key)]
	if !ok && len(c.rows) >= c.max {
		clear(c.rows)
	}
	cur.vts = max(cur.vts, m.vts)
	if m.first != 0 && (cur.first == 0 || m.first < cur.first) {
		cur.first = m.first
	}
	cur.last = max(cur.last, m.last)
	c.rows[string(key)] = cur
}

// refRows returns the puts that widen the flow ID and Community ID index
// rows of r. When r has no Community ID (the batch's blocks and records
// of the flow carried none), the one stored in the flow ID row, if any,
// is used for the Community ID row (one read).
func (s *Store) refRows(ctx context.Context, r *storage.FlowRef) ([]cellPut, error) {
	fkey := plan.FlowIDKey(r.FlowID)
	out := s.refPuts(fkey, r)
	cidText := r.CommunityID
	if cidText == "" {
		stored, ok, err := s.getRef(ctx, fkey)
		if err != nil {
			return nil, fmt.Errorf("read flow ref %s: %w", r.FlowID, err)
		}
		if ok {
			cidText = stored.CommunityID
		}
	}
	ckey, ok := plan.CommunityKey(cidText, r.FlowID)
	if !ok {
		return out, nil
	}
	return append(out, s.refPuts(ckey, r)...), nil
}

// refFromCells rebuilds a ref row's flow ref from its cells; ok is false
// when the row has no "v" cell (absent, or its first puts not all
// acknowledged yet).
func refFromCells(cells []*hrpc.Cell, r *storage.FlowRef) (ok bool, err error) {
	var lo, hi int64
	var haveLo, haveHi bool
	for _, c := range cells {
		switch string(c.Qualifier) {
		case qualifier:
			if err := rowkey.DecodeRef(c.Value, r); err != nil {
				return false, fmt.Errorf("decode flow ref: %w", err)
			}
			ok = true
		case qualifierLow:
			u, err := rowkey.DecodeUint64(c.Value)
			if err != nil {
				return false, fmt.Errorf("decode flow ref first: %w", err)
			}
			lo, haveLo = int64(u), true
		case qualifierHigh:
			u, err := rowkey.DecodeUint64(c.Value)
			if err != nil {
				return false, fmt.Errorf("decode flow ref last: %w", err)
			}
			hi, haveHi = int64(u), true
		}
	}
	if !ok {
		return false, nil
	}
	if haveLo && (r.First.IsZero() || lo < r.First.UnixNano()) {
		r.First = time.Unix(0, lo).UTC()
	}
	if haveHi && hi > rowkey.NanosOr(r.Last, math.MinInt64) {
		r.Last = time.Unix(0, hi).UTC()
	}
	return true, nil
}

// getRef reads the flow ref of the ref row at key.
func (s *Store) getRef(ctx context.Context, key []byte) (storage.FlowRef, bool, error) {
	var r storage.FlowRef
	cells, err := s.getRow(ctx, key, familyIndex)
	if err != nil {
		return r, false, err
	}
	ok, err := refFromCells(cells, &r)
	return r, ok, err
}

// batchRefRows returns the puts of every ref row of a batch's flows
// (those without a Community ID read the flow ID row, concurrently).
func (s *Store) batchRefRows(ctx context.Context, refs plan.Refs) ([]cellPut, error) {
	var out []cellPut
	var lookup []*storage.FlowRef
	for _, r := range refs {
		if r.CommunityID == "" {
			lookup = append(lookup, r)
			continue
		}
		rows, err := s.refRows(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	found := make([][]cellPut, len(lookup))
	if err := s.parallel(len(lookup), func(i int) (err error) {
		found[i], err = s.refRows(ctx, lookup[i])
		return err
	}); err != nil {
		return nil, err
	}
	for _, rows := range found {
		out = append(out, rows...)
	}
	return out, nil
}
