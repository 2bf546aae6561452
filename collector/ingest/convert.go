package ingest

import (
	"fmt"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
)

// limits bound one batch.
type limits struct {
	maxFlows, maxBlocks int
}

// convertBatch validates a wire batch from sensorID and fills dst with
// its storage form. It never panics on any input; every error wraps
// ErrBadBatch. Records and blocks that name another sensor are refused.
// dst's slices are reused; blocks alias the wire batch's bytes.
// It returns the sum of the encoded block sizes.
func convertBatch(sensorID string, b *tapirv1.Batch, lim limits, dst *storage.Batch) (int, error) {
	if b == nil {
		return 0, fmt.Errorf("%w: empty message", ErrBadBatch)
	}
	if b.Seq == 0 {
		return 0, fmt.Errorf("%w: seq 0 (sequences start at 1)", ErrBadBatch)
	}
	if len(b.Flows) > lim.maxFlows || len(b.Blocks) > lim.maxBlocks {
		return 0, fmt.Errorf("%w: %d flows, %d blocks over the limits %d, %d",
			ErrBadBatch, len(b.Flows), len(b.Blocks), lim.maxFlows, lim.maxBlocks)
	}
	dst.SensorID, dst.Seq = sensorID, b.Seq
	if cap(dst.Records) < len(b.Flows) {
		dst.Records = make([]flow.Record, len(b.Flows))
	}
	dst.Records = dst.Records[:len(b.Flows)]
	for i, f := range b.Flows {
		r := &dst.Records[i]
		if err := tapirv1.ToRecord(f, r); err != nil {
			return 0, fmt.Errorf("%w: flow %d: %v", ErrBadBatch, i, err)
		}
		switch r.SensorID {
		case "":
			r.SensorID = sensorID
		case sensorID:
		default:
			return 0, fmt.Errorf("%w: flow %d claims sensor %q", ErrBadBatch, i, r.SensorID)
		}
	}
	if cap(dst.Blocks) < len(b.Blocks) {
		dst.Blocks = make([]storage.Block, len(b.Blocks))
	}
	dst.Blocks = dst.Blocks[:len(b.Blocks)]
	bytes := 0
	for i, pb := range b.Blocks {
		if pb == nil {
			return 0, fmt.Errorf("%w: block %d: empty", ErrBadBatch, i)
		}
		m, n, err := block.ParseMeta(pb.Data)
		if err != nil {
			return 0, fmt.Errorf("%w: block %d: %v", ErrBadBatch, i, err)
		}
		if n != len(pb.Data) {
			return 0, fmt.Errorf("%w: block %d: encoded length %d, got %d bytes", ErrBadBatch, i, n, len(pb.Data))
		}
		if m.SensorID != "" && m.SensorID != sensorID {
			return 0, fmt.Errorf("%w: block %d claims sensor %q", ErrBadBatch, i, m.SensorID)
		}
		dst.Blocks[i] = storage.Block{Meta: m, Encoded: pb.Data}
		bytes += n
	}
	return bytes, nil
}
