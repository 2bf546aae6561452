package hbase_test

import (
	"context"
	"testing"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/hbase/hbasetest"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// BenchmarkWrite writes sensor batches built from the flows of a real
// capture (zeek/ssh.pcap; blocks of up to 64 packets, every flow's record, the flow
// index) to a new table on the HBase of TAPIR_HBASE_ZK, each Write
// returning once HBase acknowledged every row. It reports MB/s of block
// bytes and blocks/s.
func BenchmarkWrite(b *testing.B) {
	s := hbasetest.Open(b, hbasetest.Config(b))
	defer s.Close()
	// zeek/ssh.pcap: 1797 packets of 23 TCP connections, ~700 bytes each,
	// so blocks of 64 packets are tens of KiB, as sensors write them.
	flows := storagetest.LoadFlows(b, "zeek/ssh.pcap")
	ctx := context.Background()
	var seq uint64
	var bytes, blocks int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// New flow IDs each round (counter from seq) so every block is new.
		seq++
		bt := &storage.Batch{SensorID: "bench", Seq: seq}
		for i := range flows {
			in := storagetest.NewInstance(&flows[i], "bench", uint32(seq)<<12|uint32(i), 0, 64)
			bt.Blocks = append(bt.Blocks, in.Blocks...)
			bt.Records = append(bt.Records, in.Record)
		}
		for i := range bt.Blocks {
			bytes += int64(len(bt.Blocks[i].Encoded))
		}
		blocks += int64(len(bt.Blocks))
		if ok, err := s.Write(ctx, bt); err != nil || !ok {
			b.Fatalf("write: %v %v", ok, err)
		}
	}
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
	b.ReportMetric(float64(blocks)/b.Elapsed().Seconds(), "blocks/s")
}
