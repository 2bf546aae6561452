package export

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec
	"google.golang.org/grpc/mem"
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
// (field 2, wire type 2).
func batchFrame(batch []byte) frame {
	f := make([]byte, 0, len(batch)+11)
	f = append(f, 2<<3|2)
	n := uint64(len(batch))
	for n >= 0x80 {
		f = append(f, byte(n)|0x80)
		n >>= 7
	}
	f = append(f, byte(n))
	return append(f, batch...)
}
