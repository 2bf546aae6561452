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
	var pb tapirv1.FlowRecord
	wireAppend := func(dst []byte, r *flow.Record) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(dst, tapirv1.FromRecord(r, &pb))
	}
	wireDecode := func(v []byte, r *flow.Record) error {
		var p tapirv1.FlowRecord
		if err := proto.Unmarshal(v, &p); err != nil {
			return err
		}
		return tapirv1.ToRecord(&p, r)
	}
	stored := encodeAll(b, recs, recordcodec.Append)
	wire := encodeAll(b, recs, wireAppend)
	b.Run("Append", func(b *testing.B) { benchEncode(b, recs, stored, recordcodec.Append) })
	b.Run("Decode", func(b *testing.B) { benchDecode(b, stored, recordcodec.Decode) })
	b.Run("WireMarshal", func(b *testing.B) { benchEncode(b, recs, wire, wireAppend) })
	b.Run("WireUnmarshal", func(b *testing.B) { benchDecode(b, wire, wireDecode) })
}

// encodeAll encodes every record on its own.
func encodeAll(b *testing.B, recs []flow.Record, enc func([]byte, *flow.Record) ([]byte, error)) [][]byte {
	out := make([][]byte, len(recs))
	for i := range recs {
		var err error
		if out[i], err = enc(nil, &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// benchEncode encodes the records in turn into one reused buffer and
// reports the mean size of their encodings.
func benchEncode(b *testing.B, recs []flow.Record, encoded [][]byte, enc func([]byte, *flow.Record) ([]byte, error)) {
	defer reportCPU(b, processCPU())
	var buf []byte
	for i := 0; b.Loop(); i++ {
		var err error
		if buf, err = enc(buf[:0], &recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	size := 0
	for _, v := range encoded {
		size += len(v)
	}
	b.ReportMetric(float64(size)/float64(len(encoded)), "B/record")
}

// benchDecode decodes the values in turn into one record.
func benchDecode(b *testing.B, values [][]byte, dec func([]byte, *flow.Record) error) {
	defer reportCPU(b, processCPU())
	var r flow.Record
	for i := 0; b.Loop(); i++ {
		if err := dec(values[i%len(values)], &r); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports the process CPU time per op since start (when the
// platform measures it).
func reportCPU(b *testing.B, start time.Duration) {
	if now := processCPU(); now > 0 && b.N > 0 {
		b.ReportMetric(float64(now-start)/float64(b.N), "cpu-ns/op")
	}
}
