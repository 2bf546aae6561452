package ingest

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
)

// errOverLimit marks a batch refused for a string, list or count over
// its limit (counted apart from other malformed batches).
var errOverLimit = fmt.Errorf("%w: over a size limit", ErrBadBatch)

// limits bound one batch.
type limits struct {
	maxFlows, maxBlocks int
	maxString, maxList  int
}

// convertBatch validates a wire batch from sensorID and fills dst with
// its storage form. It never panics on any input; every error wraps
// ErrBadBatch. Records and blocks that name another sensor are refused.
// dst's slices are reused; blocks alias the wire batch's bytes.
// It returns the sum of the encoded block sizes.
func convertBatch(sensorID string, epoch uint64, b *tapirv1.Batch, lim limits, dst *storage.Batch) (int, error) {
	if b == nil {
		return 0, fmt.Errorf("%w: empty message", ErrBadBatch)
	}
	if b.Seq == 0 {
		return 0, fmt.Errorf("%w: seq 0 (sequences start at 1)", ErrBadBatch)
	}
	if b.Epoch != epoch {
		return 0, fmt.Errorf("%w: batch epoch %d on a stream of epoch %d", ErrBadBatch, b.Epoch, epoch)
	}
	if len(b.Flows) > lim.maxFlows || len(b.Blocks) > lim.maxBlocks {
		return 0, fmt.Errorf("%w: %d flows, %d blocks over the limits %d, %d",
			errOverLimit, len(b.Flows), len(b.Blocks), lim.maxFlows, lim.maxBlocks)
	}
	if err := checkStats(b.Stats, lim); err != nil {
		return 0, err
	}
	dst.SensorID, dst.Epoch, dst.Seq = sensorID, epoch, b.Seq
	if cap(dst.Records) < len(b.Flows) {
		dst.Records = make([]flow.Record, len(b.Flows))
	}
	dst.Records = dst.Records[:len(b.Flows)]
	for i, f := range b.Flows {
		r := &dst.Records[i]
		if err := checkSizes(f.ProtoReflect(), lim); err != nil {
			return 0, fmt.Errorf("flow %d: %w", i, err)
		}
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

// checkSizes walks a wire message and refuses any string longer than
// lim.maxString and any list longer than lim.maxList, at any depth (new
// fields are covered without a change here). Bytes fields are bounded
// by their own decoders (flow ids, timelines).
func checkSizes(m protoreflect.Message, lim limits) error {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if k := fd.Kind(); !fd.IsMap() && k != protoreflect.StringKind && k != protoreflect.MessageKind && k != protoreflect.GroupKind {
			continue
		}
		if !m.Has(fd) {
			continue
		}
		if err := checkField(fd, m.Get(fd), lim); err != nil {
			return err
		}
	}
	return nil
}

func checkField(fd protoreflect.FieldDescriptor, v protoreflect.Value, lim limits) error {
	switch {
	case fd.IsMap():
		if n := v.Map().Len(); n > lim.maxList {
			return fmt.Errorf("%w: %s has %d entries (max %d)", errOverLimit, fd.Name(), n, lim.maxList)
		}
		return nil
	case fd.IsList():
		l := v.List()
		if l.Len() > lim.maxList {
			return fmt.Errorf("%w: %s has %d items (max %d)", errOverLimit, fd.Name(), l.Len(), lim.maxList)
		}
		for i := 0; i < l.Len(); i++ {
			if err := checkValue(fd, l.Get(i), lim); err != nil {
				return err
			}
		}
		return nil
	}
	return checkValue(fd, v, lim)
}

func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, lim limits) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if n := len(v.String()); n > lim.maxString {
			return fmt.Errorf("%w: %s of %d bytes (max %d)", errOverLimit, fd.Name(), n, lim.maxString)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkSizes(v.Message(), lim)
	}
	return nil
}

// checkStats bounds a stats report: at most lim.maxList counters, names
// at most lim.maxString bytes.
func checkStats(st *tapirv1.SensorStats, lim limits) error {
	if st == nil {
		return nil
	}
	if len(st.Counters) > lim.maxList {
		return fmt.Errorf("%w: stats with %d counters (max %d)", errOverLimit, len(st.Counters), lim.maxList)
	}
	for k := range st.Counters {
		if len(k) > lim.maxString {
			return fmt.Errorf("%w: stats counter name of %d bytes (max %d)", errOverLimit, len(k), lim.maxString)
		}
	}
	return nil
}
