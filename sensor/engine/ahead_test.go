package engine

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/capture"
)

// keepSink keeps every record (as JSON, flow ID cleared: IDs start at a
// random counter) and every block's packet count and body size.
type keepSink struct {
	records []string
	blocks  []uint64
}

func (s *keepSink) AddRecord(r *flow.Record) error {
	c := *r
	c.ID = flow.ID{}
	b, err := json.Marshal(&c)
	s.records = append(s.records, string(b))
	return err
}

func (s *keepSink) AddBlock(b []byte) error {
	m, _, err := block.ParseMeta(b)
	if err != nil {
		return err
	}
	s.blocks = append(s.blocks, uint64(m.Packets)<<32|uint64(len(b)))
	return nil
}

// runAhead runs the frames through one worker that reads ahead from
// aheadAt open flows, and returns what it emitted and how many packets
// went through the ahead queue.
func runAhead(t *testing.T, src *sliceSource, aheadAt int) (*keepSink, uint64) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SensorID = "test"
	sink := &keepSink{}
	e, err := New(cfg, Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	e.workers[0].aheadAt = aheadAt
	runToEnd(t, e)
	return sink, e.workers[0].aheadPkts
}

// TestReadAheadAtBusyTap: with more open flows than aheadFlows (20,000
// UDP flows, 4 packets each over 6 s of packet time, so flows and blocks
// also end by age while packets are held), the worker reads packets ahead
// to prefetch their flows, and emits exactly the records and blocks, in
// the same order, as a worker that never reads ahead.
func TestReadAheadAtBusyTap(t *testing.T) {
	const flows, rounds = aheadFlows + 3616, 4
	frames := func() *sliceSource {
		src := &sliceSource{}
		for r := range rounds {
			for i := range flows {
				src.frames = append(src.frames, udpFrame(i, 100+i%300))
				src.ts = append(src.ts, int64(1e15)+int64(r)*int64(1.5e9)+int64(i)*50e3)
			}
		}
		return src
	}
	want, n := runAhead(t, frames(), math.MaxInt)
	if n != 0 {
		t.Fatalf("%d packets read ahead with read-ahead off", n)
	}
	got, n := runAhead(t, frames(), aheadFlows)
	if n == 0 {
		t.Fatalf("no packet read ahead with %d open flows", flows)
	}
	t.Logf("%d of %d packets read ahead; %d records, %d blocks", n, flows*rounds, len(got.records), len(got.blocks))
	if len(got.records) != len(want.records) || len(got.blocks) != len(want.blocks) {
		t.Fatalf("read ahead: %d records, %d blocks; without: %d, %d", len(got.records), len(got.blocks), len(want.records), len(want.blocks))
	}
	for i := range want.records {
		if got.records[i] != want.records[i] {
			t.Fatalf("record %d read ahead:\n%s\nwithout:\n%s", i, got.records[i], want.records[i])
		}
	}
	for i := range want.blocks {
		if got.blocks[i] != want.blocks[i] {
			t.Fatalf("block %d read ahead: %#x, without: %#x", i, got.blocks[i], want.blocks[i])
		}
	}
}
