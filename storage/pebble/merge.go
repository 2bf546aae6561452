package pebble

import (
	"fmt"
	"io"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// mergerName names refMerger in the store's manifest. Pebble refuses to
// open a store with another merger name; stores created before it keep
// Pebble's default merger (legacyMergerName) and read each flow ID row
// before writing it, as they never hold a merge operand.
const mergerName = "tapir.flowref.v1"

// orderedMergerName names orderedRefMerger, the same merge in stores
// whose flow ID rows are in flow ID order (plan.OrderedFlowIDKey) rather
// than salted, and whose Community ID rows are short
// (plan.CommunityHashKey). The name is what tells the layouts apart, and it keeps
// a release that knows only salted rows from opening such a store (it
// refuses an unknown merger) and writing salted rows into it.
const orderedMergerName = "tapir.flowref.v2"

// legacyMergerName is the merger of stores created before refMerger.
var legacyMergerName = pebble.DefaultMerger.Name

// refMerger lets a batch write a flow ID index row (TableFlowID) without
// first reading the stored one (a point read per flow was a sixth of the
// ingest's cost): Pebble folds the operands on read and in compactions,
// merging the flow refs as storage.FlowRef.Merge does, widening the
// flow's span (commutative, so any order of operands gives the same
// row). Any other table never gets a merge operand; one is reported as
// corrupt.
var refMerger = &pebble.Merger{Name: mergerName, Merge: newRefMerge}

// orderedRefMerger is refMerger in the stores created now: flow ID rows
// in flow ID order, short Community ID rows (see orderedMergerName).
var orderedRefMerger = &pebble.Merger{Name: orderedMergerName, Merge: newRefMerge}

func newRefMerge(key, value []byte) (pebble.ValueMerger, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: merge operand with an empty key", storage.ErrCorrupt)
	}
	if rowkey.Table(key[0]) != rowkey.TableFlowID {
		return nil, fmt.Errorf("%w: merge operand in table %q", storage.ErrCorrupt, key[0])
	}
	m := &refMerge{}
	return m, m.add(value)
}

// refMerge folds flow ref operands. A row with one operand (a flow
// written once, the common case) is passed through as it is: operands
// are decoded only when there are two to merge.
type refMerge struct {
	raw    []byte // the only operand so far (a copy)
	ref    storage.FlowRef
	merged bool // ref holds the operands
}

func (m *refMerge) add(v []byte) error {
	if m.raw == nil && !m.merged {
		m.raw = append(make([]byte, 0, len(v)), v...)
		return nil
	}
	if !m.merged {
		if err := decodeRefOperand(m.raw, &m.ref); err != nil {
			return err
		}
		m.raw, m.merged = nil, true
	}
	var r storage.FlowRef
	if err := decodeRefOperand(v, &r); err != nil {
		return err
	}
	m.ref.Merge(&r)
	return nil
}

func decodeRefOperand(v []byte, r *storage.FlowRef) error {
	if err := rowkey.DecodeRef(v, r); err != nil {
		return fmt.Errorf("merge flow ref: %w", err)
	}
	return nil
}

func (m *refMerge) MergeNewer(v []byte) error { return m.add(v) }
func (m *refMerge) MergeOlder(v []byte) error { return m.add(v) }

func (m *refMerge) Finish(bool) ([]byte, io.Closer, error) {
	if !m.merged {
		return m.raw, nil, nil
	}
	return rowkey.AppendRef(nil, &m.ref), nil, nil
}
