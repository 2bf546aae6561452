package recordcodec_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

// BenchmarkStoredRecord stores and reads the records of the real captures
// (one record an op, in turn), in this package's format and, beside it,
// as the stores did before: the wire message through tapirv1.FromRecord
// and proto.MarshalAppend (buffers reused), proto.Unmarshal and
// tapirv1.ToRecord. B/record is the mean stored size; cpu-ns/op the
// process's CPU time an op (GC included), steadier than ns/op when other
// work shares the machine.
//
//	go test ./storage/recordcodec/ -run '^$' -bench StoredRecord -benchmem
func BenchmarkStoredRecord(b *testing.B) {
	recs := realRecords(b)
	stored := make([][]byte, len(recs))
	wire := make([][]byte, len(recs))
	var size, wireSize int
	for i := range recs {
		var err error
		if stored[i], err = recordcodec.Append(nil, &recs[i]); err != nil {
			b.Fatal(err)
		}
		if wire[i], err = proto.Marshal(tapirv1.FromRecord(&recs[i], nil)); err != nil {
			b.Fatal(err)
		}
		size += len(stored[i])
		wireSize += len(wire[i])
	}
	b.Run("Append", func(b *testing.B) {
		defer reportCPU(b, processCPU())
		var buf []byte
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = recordcodec.Append(buf[:0], &recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(size)/float64(len(recs)), "B/record")
	})
	b.Run("Decode", func(b *testing.B) {
		defer reportCPU(b, processCPU())
		var r flow.Record
		for i := 0; b.Loop(); i++ {
			if err := recordcodec.Decode(stored[i%len(recs)], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("WireMarshal", func(b *testing.B) {
		defer reportCPU(b, processCPU())
		var buf []byte
		var pb tapirv1.FlowRecord
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], tapirv1.FromRecord(&recs[i%len(recs)], &pb)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(wireSize)/float64(len(recs)), "B/record")
	})
	b.Run("WireUnmarshal", func(b *testing.B) {
		defer reportCPU(b, processCPU())
		var r flow.Record
		for i := 0; b.Loop(); i++ {
			var pb tapirv1.FlowRecord
			if err := proto.Unmarshal(wire[i%len(recs)], &pb); err != nil {
				b.Fatal(err)
			}
			if err := tapirv1.ToRecord(&pb, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process CPU time per op since start (when the
// platform measures it).
func reportCPU(b *testing.B, start time.Duration) {
	if now := processCPU(); now > 0 && b.N > 0 {
		b.ReportMetric(float64(now-start)/float64(b.N), "cpu-ns/op")
	}
}
