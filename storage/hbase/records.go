package hbase

import (
	"fmt"

	"github.com/tsuna/gohbase/hrpc"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// qualifierSegment holds flow records of flows no longer than LongFlow,
// written with a plain put at timestamp tsBase + Segment: HBase keeps the
// cell with the highest timestamp, so the newest segment wins whatever
// order reports arrive in, and no read or check-and-put is needed. Such
// a record has no long-flow row to move: a flow's segments share its
// start and end no earlier than the ones before them, so every segment
// newer than a long one is long too, and long records keep the
// check-and-put merge of "v" (mergeRecord). A reader takes, of "v" and
// "s", the record with the higher segment.
const qualifierSegment = "s"

// encodeRecord returns a record's cell value (protobuf).
func encodeRecord(r *flow.Record) ([]byte, error) {
	var pb tapirv1.FlowRecord
	v, err := proto.Marshal(tapirv1.FromRecord(r, &pb))
	if err != nil {
		return nil, fmt.Errorf("marshal record: %w", err)
	}
	return v, nil
}

// shortRecordPut returns the put of a record that is not long.
func (s *Store) shortRecordPut(r *flow.Record) (cellPut, error) {
	v, err := encodeRecord(r)
	if err != nil {
		return cellPut{}, err
	}
	return cellPut{key: s.recordKey(r), family: familyIndex, ts: tsBase + uint64(r.Segment),
		cells: map[string][]byte{qualifierSegment: v}}, nil
}

// recordFromCells decodes the newest segment among a record row's cells;
// ok is false when the row holds none.
func recordFromCells(cells []*hrpc.Cell, r *flow.Record) (ok bool, err error) {
	for _, c := range cells {
		if q := string(c.Qualifier); q != qualifier && q != qualifierSegment {
			continue
		}
		var cand flow.Record
		if err := decodeRecord(c.Value, &cand); err != nil {
			return false, fmt.Errorf("decode record: %w", err)
		}
		if !ok || cand.Segment > r.Segment {
			*r = cand
			ok = true
		}
	}
	return ok, nil
}
