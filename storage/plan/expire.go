package plan

import (
	"math"
	"time"

	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Expiry is one storage.Retention.Expire walking the retention index in
// key order (blocks by their last packet time): Next decides about each
// row, removing blocks whose last packet is before the cutoff, then
// further blocks while the data is larger than the byte budget.
type Expiry struct {
	cutoff   int64
	maxBytes int64
	// DataBytes is the stored data size, less the blocks Next chose.
	DataBytes int64
}

// NewExpiry plans an Expire of blocks older than olderThan (zero: none by
// age) and beyond maxBytes (0: no limit) of a store holding dataBytes.
func NewExpiry(olderThan time.Time, maxBytes, dataBytes int64) *Expiry {
	return &Expiry{cutoff: rowkey.NanosOr(olderThan, math.MinInt64), maxBytes: maxBytes, DataBytes: dataBytes}
}

// Victim is a block that retention removes.
type Victim struct {
	// AgeKey is its retention index row's key, the slice passed to Next.
	AgeKey []byte
	// BlockKey is its block row's key (a new slice).
	BlockKey    []byte
	First, Last int64
	Size        int64
}

// Next decides about the retention index row k, v: more is false when
// the walk stops here (the row and every later one are kept); otherwise
// the row's block is removed and DataBytes drops by its size.
func (e *Expiry) Next(k, v []byte) (vic Victim, more bool, err error) {
	last, bkey, err := rowkey.DecodeAgeKey(k[1:])
	if err != nil {
		return vic, false, err
	}
	if last >= e.cutoff && (e.maxBytes <= 0 || e.DataBytes <= e.maxBytes) {
		return vic, false, nil
	}
	size, err := rowkey.DecodeUint64(v)
	if err != nil {
		return vic, false, err
	}
	bk, err := rowkey.DecodeBlockKey(bkey)
	if err != nil {
		return vic, false, err
	}
	e.DataBytes -= int64(size)
	return Victim{AgeKey: k, BlockKey: rowkey.TableKey(rowkey.TableBlocks, bkey), First: bk.First, Last: last, Size: int64(size)}, true, nil
}

// Spans gathers the removed span of each flow prefix whose blocks
// retention removes (the key is the prefix, no table byte).
type Spans map[string]rowkey.Span

// Add widens the span of v's flow prefix with v's block.
func (s Spans) Add(v *Victim) {
	p := string(v.BlockKey[1 : 1+rowkey.FlowPrefixLen])
	sp := rowkey.Span{First: v.First, Last: v.Last}
	if old, ok := s[p]; ok {
		sp = sp.Union(old)
	}
	s[p] = sp
}

// Widen returns the removed span to store given the stored row's value
// (ok false: no row), and whether it differs from the stored one.
func Widen(sp rowkey.Span, old []byte, ok bool) (rowkey.Span, bool, error) {
	if !ok {
		return sp, true, nil
	}
	o, err := rowkey.DecodeSpan(old)
	if err != nil {
		return sp, false, err
	}
	nsp := sp.Union(o)
	return nsp, nsp != o, nil
}
