package pebble

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// benchFlows derives n distinct tuples from the capture's tuples by
// varying the responder's low address bytes and the initiator's port.
func benchTuples(b *testing.B, n int) []flow.Tuple {
	flows := storagetest.LoadFlows(b, storagetest.Capture)
	out := make([]flow.Tuple, n)
	for i := range out {
		t := flows[i%len(flows)].Packets[0].Tuple
		t.Dst[14], t.Dst[15] = byte(i>>16), byte(i>>8)
		t.SrcPort = uint16(i) | 1024
		out[i] = t
	}
	return out
}

func benchBlock(rng *rand.Rand, t flow.Tuple, sensor string, id flow.ID, seq uint32, first time.Time, size int) storage.Block {
	k, _ := t.Key()
	enc := make([]byte, size)
	for i := 0; i+8 <= size; i += 8 { // incompressible, like a zstd body
		binary.LittleEndian.PutUint64(enc[i:], rng.Uint64())
	}
	return storage.Block{Meta: block.Meta{Key: k, FlowID: id, CommunityID: flow.CommunityID(0, t), SensorID: sensor,
		Interface: "eth0", LinkType: 1, Seq: seq, First: first.UnixNano(), Last: first.Add(900 * time.Millisecond).UnixNano(),
		Packets: uint32(size / 800), Bytes: uint64(size)}, Encoded: enc}
}

// BenchmarkWrite writes synced batches of 16 blocks of 16-64 KiB (random,
// incompressible bytes) and their flow records.
func BenchmarkWrite(b *testing.B) {
	cfg := DefaultConfig()
	cfg.MinFreeBytes = 0
	s := openTest(b, b.TempDir(), cfg)
	defer s.Close()
	tuples := benchTuples(b, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	const perBatch = 16
	// Pre-build a pool of batches so the timed loop only writes.
	pool := make([]*storage.Batch, 64)
	t0 := time.Unix(1_700_000_000, 0)
	var poolBytes int64
	for i := range pool {
		bt := &storage.Batch{SensorID: "bench"}
		for j := range perBatch {
			n := i*perBatch + j
			t := tuples[n%len(tuples)]
			id := flow.NewID(t0.Add(time.Duration(n)*time.Millisecond), flow.SensorHash("bench"), uint32(n))
			blk := benchBlock(rng, t, "bench", id, 0, t0.Add(time.Duration(n)*time.Millisecond), 16<<10+rng.IntN(48<<10))
			bt.Blocks = append(bt.Blocks, blk)
			poolBytes += int64(len(blk.Encoded))
			bt.Records = append(bt.Records, flow.Record{ID: id, SensorID: "bench", CommunityID: blk.Meta.CommunityID, Tuple: t,
				Start: time.Unix(0, blk.Meta.First), End: time.Unix(0, blk.Meta.Last)})
		}
		pool[i] = bt
	}
	b.SetBytes(poolBytes / int64(len(pool)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bt := *pool[i%len(pool)]
		bt.Seq = uint64(i + 1)
		// Later rounds rewrite the same blocks (a sensor resending):
		// the store replaces them, same cost as new ones.
		if ok, err := s.Write(ctx, &bt); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkLookupScan measures LookupFlow by Community ID followed by
// ScanBlocks of the flow as the store grows to 10k, 100k and 1M blocks
// (4 blocks per flow instance, 512-byte bodies so the store's index, not
// the disk, is what grows). It reports p50/p99 latency and, at each size,
// the p50 relative to the 10k store.
func BenchmarkLookupScan(b *testing.B) {
	const perFlow, body = 4, 512
	sizes := []int{10_000, 100_000, 1_000_000}
	cfg := DefaultConfig()
	cfg.MinFreeBytes = 0
	s := openTest(b, b.TempDir(), cfg)
	defer s.Close()
	tuples := benchTuples(b, sizes[len(sizes)-1]/perFlow)
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Unix(1_700_000_000, 0)
	written, seq := 0, uint64(0)
	var base float64
	for _, size := range sizes {
		for written < size {
			seq++
			bt := &storage.Batch{SensorID: "bench", Seq: seq}
			for range 2000 / perFlow {
				f := written / perFlow
				start := t0.Add(time.Duration(f) * 10 * time.Millisecond)
				id := flow.NewID(start, flow.SensorHash("bench"), uint32(f))
				for j := range perFlow {
					bt.Blocks = append(bt.Blocks, benchBlock(rng, tuples[f], "bench", id, uint32(j), start.Add(time.Duration(j)*time.Second), body))
				}
				written += perFlow
			}
			if _, err := s.Write(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		flows := written / perFlow
		b.Run(fmt.Sprintf("blocks=%d", size), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for range b.N {
				t := tuples[rng.IntN(flows)]
				st := time.Now()
				refs, err := s.LookupFlow(ctx, flow.CommunityID(0, t), time.Time{}, time.Time{})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, r := range refs {
					if err := s.ScanBlocks(ctx, r.Key, r.First, r.Last, func(*storage.Block) error { n++; return nil }); err != nil {
						b.Fatal(err)
					}
				}
				lat = append(lat, time.Since(st))
				if n != perFlow {
					b.Fatalf("%d blocks, want %d", n, perFlow)
				}
			}
			slices.Sort(lat)
			p50 := float64(lat[len(lat)/2].Microseconds())
			b.ReportMetric(p50, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if size == sizes[0] {
				base = p50 // the last (longest) run of the 10k store is the one reported
			}
			if base > 0 {
				b.ReportMetric(p50/base, "p50-vs-10k")
			}
		})
	}
}
