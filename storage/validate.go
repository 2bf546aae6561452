package storage

import "fmt"

// MaxStringLen bounds the sensor id, interface and Community ID strings a
// store keeps with a block (they are stored behind one length byte).
const MaxStringLen = 255

// ValidateBatch checks what every backend needs to key a batch: a sensor
// id, blocks with a flow ID, a sane time span and short strings, records
// with a flow ID. Its errors wrap ErrInvalidBatch: such a batch can never
// be stored, so the collector rejects it instead of retrying.
func ValidateBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalidBatch)
	}
	if b.SensorID == "" || len(b.SensorID) > MaxStringLen {
		return fmt.Errorf("%w: sensor id of %d bytes", ErrInvalidBatch, len(b.SensorID))
	}
	for i := range b.Blocks {
		m := &b.Blocks[i].Meta
		if m.Last < m.First {
			return fmt.Errorf("%w: block %d last %d before first %d", ErrInvalidBatch, i, m.Last, m.First)
		}
		if m.FlowID.IsZero() {
			return fmt.Errorf("%w: block %d has no flow id", ErrInvalidBatch, i)
		}
		if len(m.SensorID) > MaxStringLen || len(m.Interface) > MaxStringLen || len(m.CommunityID) > MaxStringLen {
			return fmt.Errorf("%w: block %d string field longer than %d", ErrInvalidBatch, i, MaxStringLen)
		}
	}
	for i := range b.Records {
		if b.Records[i].ID.IsZero() {
			return fmt.Errorf("%w: record %d has no flow id", ErrInvalidBatch, i)
		}
	}
	return nil
}

// Merge widens r with what src knows of the same flow instance: the
// earliest first and latest last time, and the ids r lacks. A zero r
// becomes a copy of src.
func (r *FlowRef) Merge(src *FlowRef) {
	if r.FlowID.IsZero() {
		*r = *src
		return
	}
	if !src.First.IsZero() && (r.First.IsZero() || src.First.Before(r.First)) {
		r.First = src.First
	}
	if src.Last.After(r.Last) {
		r.Last = src.Last
	}
	if r.CommunityID == "" {
		r.CommunityID = src.CommunityID
	}
	if r.SensorID == "" {
		r.SensorID = src.SensorID
	}
}
