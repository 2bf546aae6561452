package block

import (
	"os"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// BenchmarkAppendEncode measures the sensor's block path on real traffic:
// packets grouped by flow, Append into per-flow builders, a block encoded
// whenever a builder reaches 64 KiB of raw body, the rest at the end.
// It reports ns/packet and the encoded size (headers included, segment
// framing of 4 bytes per block added) as a ratio of the input pcap file
// size (uncompressed pcap).
func BenchmarkAppendEncode(b *testing.B) {
	for _, c := range []struct{ name, rel string }{
		{"echo", "zeek/echo-connections.pcap.gz"},
		{"ssh", "zeek/ssh.pcap"},
	} {
		pkts := loadCapture(b, c.rel)
		pcapSize := int64(24)
		for _, p := range pkts {
			pcapSize += 16 + int64(len(p.data))
		}
		if fi, err := os.Stat(testenv.Pcap(b, c.rel)); err == nil && c.rel[len(c.rel)-3:] != ".gz" && fi.Size() != pcapSize {
			b.Fatalf("pcap size %d, computed %d", fi.Size(), pcapSize)
		}
		for _, l := range []struct {
			name  string
			level Level
		}{{"fastest", SpeedFastest}, {"default", SpeedDefault}} {
			b.Run(c.name+"/"+l.name, func(b *testing.B) {
				enc := newEncoder(b, l.level)
				builders := map[uint64]*Builder{}
				var order []*Builder
				for _, p := range pkts {
					if builders[p.group] == nil {
						builders[p.group] = &Builder{}
						order = append(order, builders[p.group])
					}
				}
				dst := make([]byte, 0, 256<<10)
				var out, blocks int64
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					out, blocks = 0, 0
					for _, bl := range order {
						bl.Reset(Meta{SensorID: "sensor-1", Interface: "eth0", LinkType: 1, CommunityID: "1:0123456789012345678901234567="})
					}
					for i := range pkts {
						p := &pkts[i]
						bl := builders[p.group]
						bl.Append(p.ts, p.origLen, p.data)
						if bl.Len() >= 64<<10 {
							var err error
							dst, _, err = bl.Encode(enc, dst[:0])
							if err != nil {
								b.Fatal(err)
							}
							out += int64(len(dst)) + recordHeader
							blocks++
							m := bl.Meta()
							m.Seq++
							bl.Reset(m)
						}
					}
					for _, bl := range order {
						if bl.Packets() > 0 {
							var err error
							dst, _, err = bl.Encode(enc, dst[:0])
							if err != nil {
								b.Fatal(err)
							}
							out += int64(len(dst)) + recordHeader
							blocks++
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/packet")
				b.ReportMetric(float64(out)/float64(pcapSize), "out/pcap")
				b.ReportMetric(float64(blocks), "blocks")
			})
		}
	}
}

// BenchmarkDecode measures decoding and iterating the blocks of ssh.pcap.
func BenchmarkDecode(b *testing.B) {
	pkts := loadCapture(b, "zeek/ssh.pcap")
	blocks := encodeGrouped(b, newEncoder(b, SpeedFastest), pkts, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, eb := range blocks {
			blk, err := Decode(eb)
			if err != nil {
				b.Fatal(err)
			}
			r := blk.Reader()
			for {
				if _, _, _, err := r.Next(); err != nil {
					break
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/packet")
}
