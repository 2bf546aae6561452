package block

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// BenchmarkStoredRatio measures what the sensor's block settings cost in
// storage: encoded block bytes (segment framing included) as a ratio of
// the input pcap size, over every classic pcap of the shared captures
// (echo-connections dominates: 6.8 of ~8.5 MB). Unlike
// BenchmarkAppendEncode it closes blocks as the sensor does: at 128 KiB
// of raw body or when a block is maxAge old in packet time (checked every
// 250 ms of packet time, as the engine's timer tick does), so per-flow
// blocks of slow flows stay small. maxAge 2s is the engine default; 10s
// and "none" show how much the age limit costs in size and time.
// bench/run.sh prints out/pcap (target <= 0.6).
func BenchmarkStoredRatio(b *testing.B) {
	var caps [][]testPacket
	var pcapSize int64
	root := testenv.Pcaps(b)
	for _, path := range testenv.Captures(b) {
		if !strings.HasSuffix(path, ".pcap") && !strings.HasSuffix(path, ".pcap.gz") {
			continue // loadCapture reads classic pcap only
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			b.Fatal(err)
		}
		pkts := loadCapture(b, rel)
		if len(pkts) == 0 {
			continue
		}
		pcapSize += 24
		for _, p := range pkts {
			pcapSize += 16 + int64(len(p.data))
		}
		caps = append(caps, pkts)
	}
	const maxRaw = 128 << 10
	tick := int64(250 * time.Millisecond)
	for _, age := range []time.Duration{2 * time.Second, 10 * time.Second, 0} {
		ageName := "none"
		if age > 0 {
			ageName = age.String()
		}
		for _, l := range []struct {
			name  string
			level Level
			s2    bool
		}{{"s2", SpeedFastest, true}, {"fastest", SpeedFastest, false}, {"default", SpeedDefault, false}} {
			b.Run(fmt.Sprintf("age=%s/%s", ageName, l.name), func(b *testing.B) {
				enc, err := NewEncoder(EncoderConfig{Level: l.level, S2: l.s2})
				if err != nil {
					b.Fatal(err)
				}
				defer enc.Close()
				dst := make([]byte, 0, 256<<10)
				var out, blocks, npkts int64
				flush := func(bl *Builder) {
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
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					out, blocks, npkts = 0, 0, 0
					for _, pkts := range caps {
						builders := map[uint64]*Builder{}
						var order []*Builder
						var lastTick int64
						for i := range pkts {
							p := &pkts[i]
							npkts++
							if age > 0 && p.ts-lastTick >= tick {
								lastTick = p.ts
								for _, bl := range order {
									if bl.Packets() > 0 && p.ts-bl.First() >= int64(age) {
										flush(bl)
									}
								}
							}
							bl := builders[p.group]
							if bl == nil {
								bl = &Builder{}
								bl.Reset(Meta{SensorID: "sensor-1", Interface: "eth0", LinkType: uint16(p.link),
									CommunityID: "1:0123456789012345678901234567="})
								builders[p.group] = bl
								order = append(order, bl)
							}
							bl.Append(p.ts, p.origLen, p.data)
							if bl.Len() >= maxRaw {
								flush(bl)
							}
						}
						for _, bl := range order {
							if bl.Packets() > 0 {
								flush(bl)
							}
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(npkts), "ns/packet")
				b.ReportMetric(float64(out)/float64(pcapSize), "out/pcap")
				b.ReportMetric(float64(out)/float64(blocks), "bytes/block")
			})
		}
	}
}
