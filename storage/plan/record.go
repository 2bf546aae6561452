package plan

import (
	"fmt"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

// EncodeRecord appends the stored form of r to dst: the value of a flow
// record row and of a long-flow row, in storage/recordcodec's versioned
// format (not the wire message, so a wire-schema change never changes
// what is on disk). Every backend encodes a stored flow record here and
// nowhere else. The encoding is deterministic for one record, which lets
// a backend tell a stored record from a new one by comparing bytes.
func EncodeRecord(dst []byte, r *flow.Record) ([]byte, error) {
	v, err := recordcodec.Append(dst, r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return v, nil
}

// DecodeRecord decodes a stored flow record into r: the current format
// (EncodeRecord's output) and values written by earlier releases (a
// marshalled tapir.v1.FlowRecord), so stores need no migration. Every
// backend decodes a stored flow record here and nowhere else.
func DecodeRecord(v []byte, r *flow.Record) error {
	return recordcodec.Decode(v, r)
}

// Supersedes reports whether the stored record keeps its place against
// r, a report of the same flow: the rule of every backend is that a report
// replaces the stored one unless that one has a higher Segment.
func Supersedes(stored, r *flow.Record) bool {
	return stored.Segment > r.Segment
}

// NewestRecords returns the newest segment of each flow of records, in
// the order the flows first appear, with the batch's sensor ID filled in
// where a record has none (a copy then: records is not changed).
func NewestRecords(sensorID string, records []flow.Record) []*flow.Record {
	newest := make(map[flow.ID]*flow.Record, len(records))
	var order []*flow.Record
	for i := range records {
		r := &records[i]
		if p := newest[r.ID]; p == nil {
			order = append(order, r)
			newest[r.ID] = r
		} else if r.Segment >= p.Segment {
			newest[r.ID] = r
		}
	}
	out := make([]*flow.Record, len(order))
	for i, r := range order {
		r = newest[r.ID]
		if r.SensorID == "" {
			cp := *r
			cp.SensorID = sensorID
			r = &cp
		}
		out[i] = r
	}
	return out
}
