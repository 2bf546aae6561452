package pebble

import (
	"fmt"
	"io"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// mergerName names rowMerger in the store's manifest. Pebble refuses to
// open a store with another merger name; stores created before it keep
// Pebble's default merger (legacyMergerName) and the read-before-write
// path, as they never hold a merge operand.
const mergerName = "tapir.rows.v1"

// legacyMergerName is the merger of stores created before rowMerger.
var legacyMergerName = pebble.DefaultMerger.Name

// rowMerger lets a batch write a row without first reading the stored
// one (a point read per row was most of the ingest's cost): Pebble folds
// the operands on read and in compactions, by the row's table:
//
//   - flow ID and Community ID index rows (TableFlowID, TableCommunity):
//     the flow refs are merged as storage.FlowRef.Merge does, widening
//     the flow's span (commutative, so any order of operands gives the
//     same row);
//   - flow record rows (TableRecords, TableLongRecords): the record with
//     the higher Segment stays, the newer operand on a tie, which is
//     plan.Supersedes' rule.
//
// Any other table never gets a merge operand; one is reported as
// corrupt.
var rowMerger = &pebble.Merger{Name: mergerName, Merge: newRowMerge}

func newRowMerge(key, value []byte) (pebble.ValueMerger, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: merge operand with an empty key", storage.ErrCorrupt)
	}
	switch rowkey.Table(key[0]) {
	case rowkey.TableFlowID, rowkey.TableCommunity:
		m := &refMerge{}
		return m, m.add(value)
	case rowkey.TableRecords, rowkey.TableLongRecords:
		m := &recordMerge{}
		return m, m.MergeNewer(value)
	}
	return nil, fmt.Errorf("%w: merge operand in table %q", storage.ErrCorrupt, key[0])
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

// recordMerge keeps the operand whose record has the highest Segment
// (the newest of those on a tie). An operand is decoded only when there
// are two to choose from.
type recordMerge struct {
	v   []byte // the kept operand (a copy: Pebble owns its values)
	seg uint32
	dec bool // seg is v's
}

func (m *recordMerge) segment(v []byte) (uint32, error) {
	var r flow.Record
	if err := plan.DecodeRecord(v, &r); err != nil {
		return 0, fmt.Errorf("merge flow record: %w", err)
	}
	return r.Segment, nil
}

func (m *recordMerge) keep(v []byte, newer bool) error {
	if m.v == nil {
		m.v = append(make([]byte, 0, len(v)), v...)
		return nil
	}
	if !m.dec {
		s, err := m.segment(m.v)
		if err != nil {
			return err
		}
		m.seg, m.dec = s, true
	}
	s, err := m.segment(v)
	if err != nil {
		return err
	}
	if s > m.seg || (s == m.seg && newer) {
		m.v, m.seg = append(m.v[:0], v...), s
	}
	return nil
}

func (m *recordMerge) MergeNewer(v []byte) error { return m.keep(v, true) }
func (m *recordMerge) MergeOlder(v []byte) error { return m.keep(v, false) }

func (m *recordMerge) Finish(bool) ([]byte, io.Closer, error) { return m.v, nil, nil }
