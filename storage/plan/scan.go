package plan

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// BlockScan is one storage.Reader.ScanBlocks: one bounded range of the
// flow key's block rows, from (flow prefix, bucket of the window start
// minus the longest block span ever written) to (flow prefix, bucket
// after the window end), filtered by Decode, then the flow key's
// removed-span row (ExpiredKey), checked by Expired.
type BlockScan struct {
	Window
	key flow.Key
	// Lower and Upper bound the range of block rows (Upper excluded);
	// Lower starts with the flow prefix, so it also serves as a prefix
	// seek key.
	Lower, Upper []byte
	// ExpiredKey is the key of the flow key's removed-span row.
	ExpiredKey []byte
}

// BlockScan plans the scan of key's blocks in [from, to] (zero times:
// unbounded) in a store whose longest block span is maxSpan.
func (l Layout) BlockScan(key flow.Key, from, to time.Time, maxSpan int64) *BlockScan {
	w := NewWindow(from, to)
	prefix := rowkey.AppendFlowPrefix([]byte{byte(rowkey.TableBlocks)}, &key)
	p := &BlockScan{Window: w, key: key, Lower: prefix, Upper: rowkey.PrefixEnd(prefix), ExpiredKey: ExpiredKey(prefix[1:])}
	if !from.IsZero() {
		p.Lower = rowkey.AppendTime(slices.Clip(prefix), rowkey.Bucket(rowkey.SubSat(w.Lo, maxSpan), l.Bucket))
	}
	if !to.IsZero() {
		p.Upper = rowkey.AppendTime(slices.Clip(prefix), rowkey.NextBucket(w.Hi, l.Bucket))
	}
	return p
}

// Decode decodes the block row k, v of the range into blk and reports
// whether the block overlaps the window.
func (p *BlockScan) Decode(k, v []byte, blk *storage.Block) (bool, error) {
	if err := rowkey.DecodeBlock(k[1:], v, blk); err != nil {
		return false, err
	}
	return p.HoldsBlock(&blk.Meta), nil
}

// Expired returns the scan's answer given the removed-span row's value
// (ok false: no row): an error wrapping storage.ErrPacketsExpired when
// retention removed blocks of the key in the window, else nil.
func (p *BlockScan) Expired(v []byte, ok bool) error {
	if !ok {
		return nil
	}
	return rowkey.ExpiredIn(p.key.String(), v, p.Lo, p.Hi)
}

// ErrRecordWindow: ScanRecords needs both ends of its window.
var ErrRecordWindow = errors.New("scan records: from and to are required")

// RecordScan is one storage.Reader.ScanRecords, found by two range scans:
// the long-flow index (by end bucket) from the window start's bucket on
// (LongLower..LongUpper), whose records that start before the start-time
// range the backend passes to AddLong; then, after EmitEarlier, the
// start-time index from bucket(from - Long) to bucket(to)+1
// (StartLower..StartUpper), which holds every flow of at most Long that
// overlaps the window, each passed to fn when it Overlaps.
type RecordScan struct {
	win                    Window
	layout                 Layout
	StartLower, StartUpper []byte
	LongLower, LongUpper   []byte
	earlier                []early
}

type early struct {
	key []byte
	r   flow.Record
}

// RecordScan plans the scan of the records overlapping [from, to]; both
// are required (ErrRecordWindow).
func (l Layout) RecordScan(from, to time.Time) (*RecordScan, error) {
	if from.IsZero() || to.IsZero() {
		return nil, ErrRecordWindow
	}
	lo, hi := from.UnixNano(), to.UnixNano()
	return &RecordScan{
		win:        Window{Lo: lo, Hi: hi},
		layout:     l,
		StartLower: rowkey.TableKey(rowkey.TableRecords, rowkey.AppendTime(nil, rowkey.Bucket(rowkey.SubSat(lo, l.Long), l.Bucket))),
		StartUpper: rowkey.TableKey(rowkey.TableRecords, rowkey.AppendTime(nil, rowkey.NextBucket(hi, l.Bucket))),
		LongLower:  rowkey.TableKey(rowkey.TableLongRecords, rowkey.AppendTime(nil, rowkey.Bucket(lo, l.Bucket))),
		LongUpper:  []byte{byte(rowkey.TableLongRecords) + 1},
	}, nil
}

// Overlaps reports whether the flow of r overlaps the window (a record
// without an end is its start).
func (p *RecordScan) Overlaps(r *flow.Record) bool {
	end := r.End
	if end.IsZero() {
		end = r.Start
	}
	return r.Start.UnixNano() <= p.win.Hi && end.UnixNano() >= p.win.Lo
}

// AddLong takes a record of the long-flow index: it keeps a copy when the
// flow overlaps the window but started before the start-time range.
func (p *RecordScan) AddLong(r *flow.Record) {
	rk := p.layout.RecordKey(r)
	if bytes.Compare(rk, p.StartLower) < 0 && p.Overlaps(r) {
		p.earlier = append(p.earlier, early{rk, *r})
	}
}

// EmitEarlier calls fn for the records AddLong kept, in record key order
// (start time), and stops at fn's first error.
func (p *RecordScan) EmitEarlier(fn func(*flow.Record) error) error {
	slices.SortFunc(p.earlier, func(a, b early) int { return bytes.Compare(a.key, b.key) })
	for i := range p.earlier {
		if err := fn(&p.earlier[i].r); err != nil {
			return err
		}
	}
	return nil
}
