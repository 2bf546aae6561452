package plan

import (
	"fmt"
	"math"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Window is a retrieval's time window [Lo, Hi] in Unix nanoseconds; an
// open end is the smallest or largest time.
type Window struct{ Lo, Hi int64 }

// NewWindow returns the window [from, to], a zero time meaning unbounded.
func NewWindow(from, to time.Time) Window {
	return Window{Lo: rowkey.NanosOr(from, math.MinInt64), Hi: rowkey.NanosOr(to, math.MaxInt64)}
}

// HoldsRef reports whether the flow r overlaps the window (a zero First
// or Last is unbounded).
func (w Window) HoldsRef(r *storage.FlowRef) bool {
	return rowkey.NanosOr(r.First, math.MinInt64) <= w.Hi && rowkey.NanosOr(r.Last, math.MaxInt64) >= w.Lo
}

// HoldsBlock reports whether a block's packets overlap the window.
func (w Window) HoldsBlock(m *block.Meta) bool {
	return m.First <= w.Hi && m.Last >= w.Lo
}

// Lookup is one storage.Reader.LookupFlow: which index it reads, and the
// flow refs it keeps. A backend reads CommunityPrefix's rows (ByCommunity)
// or FlowIDKey's row, passes each ref to Keep, and returns Result.
type Lookup struct {
	id        string
	community bool
	cid       [rowkey.CommunityLen]byte
	fid       flow.ID
	win       Window
	out       []storage.FlowRef
}

// NewLookup parses id, a Community ID ("1:...") or a tapir flow ID (32
// hex digits), for refs overlapping [from, to]. Any other id is an error
// wrapping storage.ErrFlowUnknown.
func NewLookup(id string, from, to time.Time) (*Lookup, error) {
	q := &Lookup{id: id, win: NewWindow(from, to)}
	if cid, ok := rowkey.ParseCommunityID(id); ok {
		q.community, q.cid = true, cid
		return q, nil
	}
	fid, err := flow.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is neither a Community ID nor a flow ID", storage.ErrFlowUnknown, id)
	}
	q.fid = fid
	return q, nil
}

// ByCommunity reports whether the lookup scans the Community ID index
// (CommunityPrefix) rather than reading one flow ID row (FlowIDKey).
func (q *Lookup) ByCommunity() bool { return q.community }

// CommunityPrefix returns the key prefix of the Community ID index rows
// of a Community ID lookup.
func (q *Lookup) CommunityPrefix() []byte {
	return rowkey.TableKey(rowkey.TableCommunity, q.cid[:])
}

// CommunityHashPrefix returns the key prefix of the short Community ID
// index rows (rowkey.AppendCommunityHashKey) of a Community ID lookup.
func (q *Lookup) CommunityHashPrefix() []byte {
	return rowkey.TableKey(rowkey.TableCommunityHash, q.cid[:rowkey.CommunityHashLen])
}

// FlowIDKey returns the key of the flow ID index row of a flow ID lookup.
func (q *Lookup) FlowIDKey() []byte { return FlowIDKey(q.fid) }

// FlowID returns the flow ID of a flow ID lookup.
func (q *Lookup) FlowID() flow.ID { return q.fid }

// Keep adds r to the result when it overlaps the window.
func (q *Lookup) Keep(r *storage.FlowRef) {
	if q.win.HoldsRef(r) {
		q.out = append(q.out, *r)
	}
}

// KeepValue decodes an index row's value (rowkey.AppendRef) and Keeps it.
func (q *Lookup) KeepValue(v []byte) error {
	var r storage.FlowRef
	if err := rowkey.DecodeRef(v, &r); err != nil {
		return err
	}
	q.Keep(&r)
	return nil
}

// KeepValueOfCommunity decodes the flow ref a short Community ID row
// points at and Keeps it when its Community ID is the one looked up (a
// short row's hash prefix can be another Community ID's).
func (q *Lookup) KeepValueOfCommunity(v []byte) error {
	var r storage.FlowRef
	if err := rowkey.DecodeRef(v, &r); err != nil {
		return err
	}
	if cid, ok := rowkey.ParseCommunityID(r.CommunityID); ok && cid == q.cid {
		q.Keep(&r)
	}
	return nil
}

// Err wraps an error of the lookup's reads with the id looked up.
func (q *Lookup) Err(err error) error {
	return fmt.Errorf("lookup %s: %w", q.id, err)
}

// Result returns the refs kept, or an error wrapping
// storage.ErrFlowUnknown when there are none.
func (q *Lookup) Result() ([]storage.FlowRef, error) {
	if len(q.out) == 0 {
		return nil, fmt.Errorf("%w: %s", storage.ErrFlowUnknown, q.id)
	}
	return q.out, nil
}
