package export

import (
	"bytes"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// batchSink builds a Batch of what the engine emits, as the exporter does.
type batchSink struct {
	mu sync.Mutex
	b  tapirv1.Batch
}

func (s *batchSink) AddRecord(r *flow.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Flows = append(s.b.Flows, tapirv1.FromRecord(r, nil))
	return nil
}

func (s *batchSink) AddBlock(encoded []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Blocks = append(s.b.Blocks, &tapirv1.PacketBlock{Data: bytes.Clone(encoded)})
	return nil
}

// sensorBatch runs the engine over a shared capture and returns one Batch
// of all its records and blocks.
func sensorBatch(t *testing.T, rel string) *tapirv1.Batch {
	t.Helper()
	src, err := capture.OpenFile(testenv.Plain(t, testenv.Pcap(t, rel)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := engine.DefaultConfig()
	cfg.SensorID = "frame-test"
	sink := &batchSink{}
	e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	<-e.Done()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(sink.b.Flows) == 0 || len(sink.b.Blocks) == 0 {
		t.Fatalf("%s: %d records, %d blocks", rel, len(sink.b.Flows), len(sink.b.Blocks))
	}
	return &sink.b
}

// TestBatchFrameIsProtoMarshal: a frame built with protowire is byte for
// byte proto.Marshal of SensorMessage{batch} with the epoch set, its
// payload is the batch, and re-framing a payload (spooled batches) takes
// the new epoch.
func TestBatchFrameIsProtoMarshal(t *testing.T) {
	det := proto.MarshalOptions{Deterministic: true} // Stats.Counters is a map
	b := sensorBatch(t, "zeek/wikipedia.pcap")
	b.Seq, b.CreatedUnixNano = 42, 1_700_000_000_000_000_000
	b.Stats = &tapirv1.SensorStats{UnixNano: 1_700_000_000_000_000_001, Counters: map[string]uint64{"packets": 7, "blocks": 3}}
	data, err := det.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []uint64{1, 0x8000_0000_0000_0001, 300} {
		f := batchFrame(data, epoch)
		withEpoch := proto.Clone(b).(*tapirv1.Batch)
		withEpoch.Epoch = epoch
		want, err := det.Marshal(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: withEpoch}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f, want) {
			t.Fatalf("epoch %d: frame of %d bytes differs from proto.Marshal's %d", epoch, len(f), len(want))
		}
		refr := batchFrame(framePayload(f), epoch+1)
		var got tapirv1.SensorMessage
		if err := proto.Unmarshal(refr, &got); err != nil {
			t.Fatal(err)
		}
		withEpoch.Epoch = epoch + 1
		if !proto.Equal(got.GetBatch(), withEpoch) {
			t.Fatalf("epoch %d re-framed as %d: batch differs", epoch, epoch+1)
		}
	}
	var got tapirv1.SensorMessage
	if err := proto.Unmarshal(batchFrame(data, 0), &got); err != nil || !proto.Equal(got.GetBatch(), b) {
		t.Fatalf("epoch 0: %v, batch equal %v", err, proto.Equal(got.GetBatch(), b))
	}
}

// TestMustFieldChecksTheDescriptor: a field the frame code would write
// with the wrong number or wire type is refused when the package loads.
func TestMustFieldChecksTheDescriptor(t *testing.T) {
	md := (&tapirv1.Batch{}).ProtoReflect().Descriptor()
	if f := mustField(md, "epoch", protoreflect.Uint64Kind, protowire.VarintType); f.num != 6 {
		t.Fatalf("Batch.epoch is field %d, want 6 (tapir.proto)", f.num)
	}
	for _, c := range []struct {
		name protoreflect.Name
		kind protoreflect.Kind
	}{{"epoch", protoreflect.Int64Kind}, {"no_such_field", protoreflect.Uint64Kind}, {"flows", protoreflect.MessageKind}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("mustField(Batch, %s, %v) did not panic", c.name, c.kind)
				}
			}()
			mustField(md, c.name, c.kind, protowire.VarintType)
		}()
	}
}
