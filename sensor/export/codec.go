package export

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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

// batchFrame wraps a marshalled Batch as SensorMessage{batch: ...}
// (field 2, wire type 2), stamped with the epoch: Batch.epoch (field 6,
// varint) is appended after the batch's own fields, and protobuf keeps
// the last value of a field. So spooled batches carry no epoch of their
// own and always go out in the spool's current one.
func batchFrame(batch []byte, epoch uint64) frame {
	tail := protowire.AppendVarint(protowire.AppendTag(nil, 6, protowire.VarintType), epoch)
	f := make([]byte, 0, len(batch)+len(tail)+11)
	f = protowire.AppendTag(f, 2, protowire.BytesType)
	f = protowire.AppendVarint(f, uint64(len(batch)+len(tail)))
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
