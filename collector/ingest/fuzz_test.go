package ingest

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
)

// FuzzHandleBatch feeds arbitrary SensorMessage bytes through what the
// server does with a received message: unmarshal, validation, record
// conversion and block header parsing. It must never panic, and an
// accepted batch must be internally consistent.
func FuzzHandleBatch(f *testing.F) {
	tr := ingesttest.CaptureTraffic(f, "fz", 3)
	for i := 0; i < len(tr.Blocks); i += 3 {
		b := &tapirv1.Batch{Seq: uint64(i + 1)}
		for j := i; j < min(i+3, len(tr.Blocks)); j++ {
			b.Blocks = append(b.Blocks, &tapirv1.PacketBlock{Data: tr.Blocks[j]})
		}
		if i < len(tr.Records) {
			b.Flows = append(b.Flows, tapirv1.FromRecord(&tr.Records[i], nil))
		}
		data, _ := proto.Marshal(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: b}})
		f.Add(data)
	}
	lim := limits{maxFlows: 1000, maxBlocks: 1000, maxString: 4096, maxList: 256}
	var sb storage.Batch
	f.Fuzz(func(t *testing.T, data []byte) {
		var m tapirv1.SensorMessage
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		b := m.GetBatch()
		if b == nil {
			return
		}
		n, err := convertBatch("fz", b.Epoch, b, lim, &sb)
		if err != nil {
			return
		}
		if sb.Seq != b.Seq || len(sb.Blocks) != len(b.Blocks) || len(sb.Records) != len(b.Flows) {
			t.Fatalf("inconsistent conversion")
		}
		total := 0
		for _, bl := range sb.Blocks {
			total += len(bl.Encoded)
			if bl.Meta.SensorID != "" && bl.Meta.SensorID != "fz" {
				t.Fatalf("block of sensor %q accepted", bl.Meta.SensorID)
			}
		}
		if total != n {
			t.Fatalf("byte count %d != %d", n, total)
		}
		for _, r := range sb.Records {
			if r.SensorID != "fz" {
				t.Fatalf("record of sensor %q accepted", r.SensorID)
			}
		}
	})
}
