package export

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// frame is a SensorMessage already in wire form, sent as is.
type frame []byte

// rawCodec sends frames without re-marshalling and delegates everything
// else to the proto codec. Its name is "proto", so the server sees an
// ordinary protobuf stream.
type rawCodec struct{ proto encoding.CodecV2 }

func newRawCodec() rawCodec { return rawCodec{proto: encoding.GetCodecV2("proto")} }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(frame); ok {
		return mem.BufferSlice{mem.SliceBuffer(f)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(frame); ok {
		return fmt.Errorf("export: cannot unmarshal into a frame")
	}
	return c.proto.Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }

// Field numbers and wire types of the frame, taken from the generated
// descriptors so they follow tapir.proto.
var (
	msgBatch   = mustField((&tapirv1.SensorMessage{}).ProtoReflect().Descriptor(), "batch", protoreflect.MessageKind, protowire.BytesType)
	batchEpoch = mustField((&tapirv1.Batch{}).ProtoReflect().Descriptor(), "epoch", protoreflect.Uint64Kind, protowire.VarintType)
)

// field is a message field's number and wire type.
type field struct {
	num protowire.Number
	typ protowire.Type
}

// mustField returns the number of field name of md with the wire type
// given, after checking that the field has the kind the frame code
// writes; a mismatch is a programming error (tapir.proto changed under
// this code), so it panics when the package loads.
func mustField(md protoreflect.MessageDescriptor, name protoreflect.Name, kind protoreflect.Kind, typ protowire.Type) field {
	fd := md.Fields().ByName(name)
	if fd == nil || fd.Kind() != kind || fd.IsList() {
		panic(fmt.Sprintf("export: %s.%s is not a singular %v field", md.FullName(), name, kind))
	}
	return field{num: fd.Number(), typ: typ}
}

// batchFrame wraps a marshalled Batch as SensorMessage{batch: ...},
// stamped with the epoch: Batch.epoch is appended after the batch's own
// fields, and protobuf keeps the last value of a field. So spooled
// batches carry no epoch of their own and always go out in the spool's
// current one. For a non-zero epoch the frame is byte for byte what
// proto.Marshal makes of the same message (epoch is Batch's last field);
// a zero epoch is written too (proto.Marshal would leave it out), which
// decodes the same.
func batchFrame(batch []byte, epoch uint64) frame {
	tail := protowire.AppendVarint(protowire.AppendTag(nil, batchEpoch.num, batchEpoch.typ), epoch)
	n := uint64(len(batch) + len(tail))
	f := make([]byte, 0, protowire.SizeTag(msgBatch.num)+protowire.SizeVarint(n)+int(n))
	f = protowire.AppendTag(f, msgBatch.num, msgBatch.typ)
	f = protowire.AppendVarint(f, n)
	f = append(f, batch...)
	return append(f, tail...)
}

// framePayload returns the marshalled Batch inside a frame (the epoch
// stamp included; a later batchFrame overrides it).
func framePayload(f frame) []byte {
	_, _, n := protowire.ConsumeTag(f)
	_, m := protowire.ConsumeVarint(f[n:])
	return f[n+m:]
}
