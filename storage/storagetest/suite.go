// Package storagetest is the contract every storage.BlockStore backend
// passes: Run it from the backend's tests with a function that opens an
// empty store. It builds its data from the flows of the shared real
// captures (zeek/wikipedia.pcap) and checks Community IDs against
// flow.CommunityID of the captured tuples.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
)

// Capture is the shared capture the suite builds its flows from.
const Capture = "zeek/wikipedia.pcap"

// Run runs the contract suite. open must return a new, empty store; the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) storage.BlockStore) {
	flows := LoadFlows(t, Capture)
	t.Run("BothDirections", func(t *testing.T) { testBothDirections(t, open(t), flows) })
	t.Run("Window", func(t *testing.T) { testWindow(t, open(t), flows) })
	t.Run("Lookup", func(t *testing.T) { testLookup(t, open(t), flows) })
	t.Run("Dedupe", func(t *testing.T) { testDedupe(t, open(t), flows) })
	t.Run("DurableSeq", func(t *testing.T) { testDurableSeq(t, open(t), flows) })
	t.Run("EpochDedupe", func(t *testing.T) { testEpochDedupe(t, open(t), flows) })
	t.Run("ConcurrentSameFlow", func(t *testing.T) { testConcurrentSameFlow(t, open(t), flows) })
	t.Run("RecordsNewestSegment", func(t *testing.T) { testRecordsNewest(t, open(t), flows) })
	t.Run("RecordsWindow", func(t *testing.T) { testRecordsWindow(t, open(t), flows) })
	t.Run("RecordsConcurrentSegments", func(t *testing.T) { testRecordsConcurrentSegments(t, open(t), flows) })
	t.Run("ExpireAge", func(t *testing.T) { testExpireAge(t, open(t), flows) })
	t.Run("ExpireSize", func(t *testing.T) { testExpireSize(t, open(t), flows) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

var ctx = context.Background()

// Instances makes one instance per capture flow for sensor.
func Instances(flows []Flow, sensor string, shift time.Duration, perBlock int) []*Instance {
	out := make([]*Instance, len(flows))
	for i := range flows {
		out[i] = NewInstance(&flows[i], sensor, uint32(i+1), shift, perBlock)
	}
	return out
}

// WriteInstances writes the instances' blocks and records, perBatch
// instances per batch, with batch seqs from firstSeq on. It returns the
// next seq.
func WriteInstances(t testing.TB, s storage.Writer, sensor string, ins []*Instance, perBatch int, firstSeq uint64) uint64 {
	t.Helper()
	seq := firstSeq
	for i := 0; i < len(ins); i += perBatch {
		b := &storage.Batch{SensorID: sensor, Seq: seq}
		for _, in := range ins[i:min(i+perBatch, len(ins))] {
			b.Blocks = append(b.Blocks, in.Blocks...)
			b.Records = append(b.Records, in.Record)
		}
		applied, err := s.Write(ctx, b)
		if err != nil || !applied {
			t.Fatalf("write %s/%d: applied=%v err=%v", sensor, seq, applied, err)
		}
		seq++
	}
	return seq
}

// scan collects copies of the blocks ScanBlocks returns.
func scan(s storage.Reader, key flow.Key, from, to time.Time) ([]storage.Block, error) {
	var out []storage.Block
	err := s.ScanBlocks(ctx, key, from, to, func(b *storage.Block) error {
		out = append(out, storage.Block{Meta: b.Meta, Encoded: bytes.Clone(b.Encoded)})
		return nil
	})
	return out, err
}

// sameBlocks checks got is in time order and holds exactly want (any order
// among equal first times).
func sameBlocks(t *testing.T, what string, got, want []storage.Block) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Meta.First < got[i-1].Meta.First {
			t.Fatalf("%s: block %d starts at %d before block %d at %d", what, i, got[i].Meta.First, i-1, got[i-1].Meta.First)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d blocks, want %d", what, len(got), len(want))
	}
	left := slices.Clone(want)
	for _, g := range got {
		i := slices.IndexFunc(left, func(w storage.Block) bool { return bytes.Equal(w.Encoded, g.Encoded) })
		if i < 0 {
			t.Fatalf("%s: unexpected block %+v", what, g.Meta)
		}
		if left[i].Meta != g.Meta {
			t.Fatalf("%s: meta\n got %+v\nwant %+v", what, g.Meta, left[i].Meta)
		}
		left = slices.Delete(left, i, i+1)
	}
}

func overlapping(bs []storage.Block, from, to time.Time) []storage.Block {
	var out []storage.Block
	for _, b := range bs {
		if (to.IsZero() || b.Meta.First <= to.UnixNano()) && (from.IsZero() || b.Meta.Last >= from.UnixNano()) {
			out = append(out, b)
		}
	}
	return out
}

func blocksOfKey(key flow.Key, sets ...[]*Instance) []storage.Block {
	var out []storage.Block
	for _, ins := range sets {
		for _, in := range ins {
			if in.Flow.Key == key {
				out = append(out, in.Blocks...)
			}
		}
	}
	sortBlocks(out)
	return out
}

func closeStore(t *testing.T, s storage.BlockStore) {
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func testBothDirections(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	a := Instances(flows, "sensor-a", 0, 2)
	// A second tap sees the same traffic 1 ms later.
	b := Instances(flows, "sensor-b", time.Millisecond, 3)
	WriteInstances(t, s, "sensor-a", a, 4, 1)
	WriteInstances(t, s, "sensor-b", b, 7, 1)
	bidir := 0
	for i := range flows {
		f := &flows[i]
		want := blocksOfKey(f.Key, a, b)
		dirs := map[flow.Tuple]bool{}
		for _, p := range f.Packets {
			dirs[p.Tuple] = true
		}
		if len(dirs) > 1 {
			bidir++
		}
		for tup := range dirs {
			for _, tt := range []flow.Tuple{tup, tup.Reverse()} {
				k, _ := tt.Key()
				got, err := scan(s, k, time.Time{}, time.Time{})
				if err != nil {
					t.Fatalf("scan %s: %v", tt, err)
				}
				sameBlocks(t, tt.String(), got, want)
			}
		}
	}
	if bidir < 5 {
		t.Fatalf("only %d flows of %s have packets both ways", bidir, Capture)
	}
}

// longest returns the index of the flow with the most packets.
func longest(flows []Flow) int {
	best := 0
	for i := range flows {
		if len(flows[i].Packets) > len(flows[best].Packets) {
			best = i
		}
	}
	return best
}

func testWindow(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 3)
	WriteInstances(t, s, "sensor-a", ins, 5, 1)
	// The same 5-tuple reused a day later.
	again := []*Instance{NewInstance(&flows[longest(flows)], "sensor-a", 1000, 24*time.Hour, 3)}
	WriteInstances(t, s, "sensor-a", again, 1, 100)
	// A slow instance two days later whose one block spans three hours.
	slow := NewInstance(&flows[longest(flows)], "sensor-a", 1001, 48*time.Hour, 1<<20)
	slow.Blocks[0].Meta.Last = slow.Blocks[0].Meta.First + int64(3*time.Hour)
	WriteInstances(t, s, "sensor-a", []*Instance{slow}, 1, 101)
	f := &flows[longest(flows)]
	all := blocksOfKey(f.Key, ins, again, []*Instance{slow})
	if len(all) < 6 {
		t.Fatalf("longest flow has only %d blocks", len(all))
	}
	ns := func(n int64) time.Time { return time.Unix(0, n) }
	type window struct{ from, to time.Time }
	var windows []window
	for i, b := range all {
		windows = append(windows,
			window{ns(b.Meta.First), ns(b.Meta.Last)},
			window{ns(b.Meta.First), ns(b.Meta.First)},
			window{ns(b.Meta.Last), time.Time{}},
			window{time.Time{}, ns(b.Meta.First)})
		if i+1 < len(all) {
			windows = append(windows, window{ns(b.Meta.Last + 1), ns(all[i+1].Meta.First - 1)})
		}
	}
	first, last := all[0].Meta.First, all[len(all)-1].Meta.Last
	windows = append(windows,
		window{ns(first - int64(time.Hour)), ns(first - 1)},
		window{ns(last + 1), ns(last + int64(time.Hour))},
		window{ns(first), ns(first + int64(12*time.Hour))},
		window{ns(slow.Blocks[0].Meta.First + int64(2*time.Hour)), ns(slow.Blocks[0].Meta.First + int64(2*time.Hour+time.Second))},
		window{ns(slow.Blocks[0].Meta.Last), time.Time{}})
	for _, w := range windows {
		got, err := scan(s, f.Key, w.from, w.to)
		if err != nil {
			t.Fatalf("scan %v..%v: %v", w.from, w.to, err)
		}
		sameBlocks(t, "window "+w.from.String()+".."+w.to.String(), got, overlapping(all, w.from, w.to))
	}
}

func sortRefs(rs []storage.FlowRef) {
	slices.SortFunc(rs, func(a, b storage.FlowRef) int { return a.First.Compare(b.First) })
}

func testLookup(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	a := Instances(flows, "sensor-a", 0, 2)
	reuse := Instances(flows, "sensor-a", 2*time.Hour, 2) // 5-tuples reused 2 h later
	for i, in := range reuse {
		*in = *NewInstance(in.Flow, "sensor-a", uint32(10000+i), 2*time.Hour, 2)
	}
	b := Instances(flows, "sensor-b", time.Millisecond, 4)
	seq := WriteInstances(t, s, "sensor-a", a, 6, 1)
	WriteInstances(t, s, "sensor-a", reuse, 6, seq)
	WriteInstances(t, s, "sensor-b", b, 9, 1)
	for i := range flows {
		f := &flows[i]
		tup := f.Packets[0].Tuple
		cid := flow.CommunityID(0, tup)
		if rc := flow.CommunityID(0, tup.Reverse()); rc != cid && tup.Proto != flow.ProtoICMP && tup.Proto != flow.ProtoICMPv6 {
			t.Fatalf("%s: community id %s, reverse %s", tup, cid, rc)
		}
		want := []*Instance{a[i], b[i], reuse[i]}
		// Instances whose Community ID equals this flow's: a flow of a
		// one-way ICMP type may share its key but not its ID with none.
		refs, err := s.LookupFlow(ctx, cid, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("lookup %s (%s): %v", cid, tup, err)
		}
		sortRefs(refs)
		if len(refs) != len(want) {
			t.Fatalf("lookup %s (%s): %d refs, want %d", cid, tup, len(refs), len(want))
		}
		for j, in := range want {
			r := refs[j]
			p := in.Flow.Packets
			wr := storage.FlowRef{Key: f.Key, FlowID: in.ID, CommunityID: cid, SensorID: in.SensorID,
				First: p[0].Time.Add(in.Shift), Last: p[len(p)-1].Time.Add(in.Shift)}
			if r.Key != wr.Key || r.FlowID != wr.FlowID || r.CommunityID != wr.CommunityID || r.SensorID != wr.SensorID ||
				!r.First.Equal(wr.First) || !r.Last.Equal(wr.Last) {
				t.Fatalf("lookup %s ref %d:\n got %+v\nwant %+v", cid, j, r, wr)
			}
		}
		// A window around the reused instance only.
		ru := reuse[i].Record
		refs, err = s.LookupFlow(ctx, cid, ru.Start, ru.End)
		if err != nil || len(refs) != 1 || refs[0].FlowID != reuse[i].ID {
			t.Fatalf("lookup %s in %v..%v: %+v, %v; want only %s", cid, ru.Start, ru.End, refs, err, reuse[i].ID)
		}
		// By flow ID.
		refs, err = s.LookupFlow(ctx, b[i].ID.String(), time.Time{}, time.Time{})
		if err != nil || len(refs) != 1 || refs[0].FlowID != b[i].ID || refs[0].SensorID != "sensor-b" || refs[0].Key != f.Key {
			t.Fatalf("lookup flow id %s: %+v, %v", b[i].ID, refs, err)
		}
		if _, err := s.LookupFlow(ctx, b[i].ID.String(), ru.Start, ru.End); !errors.Is(err, storage.ErrFlowUnknown) {
			t.Fatalf("lookup flow id %s outside its time: %v, want ErrFlowUnknown", b[i].ID, err)
		}
	}
	// The same tuple under another seed hashes to an ID nobody stored.
	for _, id := range []string{flow.CommunityID(1, flows[0].Packets[0].Tuple),
		flow.NewID(time.Unix(1, 0), 7, 7).String(), "not-an-id"} {
		if _, err := s.LookupFlow(ctx, id, time.Time{}, time.Time{}); !errors.Is(err, storage.ErrFlowUnknown) {
			t.Fatalf("lookup %q: %v, want ErrFlowUnknown", id, err)
		}
	}
}

func countBlocks(t *testing.T, s storage.Reader, flows []Flow) int {
	t.Helper()
	n := 0
	for i := range flows {
		bs, err := scan(s, flows[i].Key, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		n += len(bs)
	}
	return n
}

func testDedupe(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 2)
	b := &storage.Batch{SensorID: "sensor-a", Seq: 1}
	for _, in := range ins[:len(ins)/2] {
		b.Blocks = append(b.Blocks, in.Blocks...)
		b.Records = append(b.Records, in.Record)
	}
	if ok, err := s.Write(ctx, b); !ok || err != nil {
		t.Fatalf("first write: %v %v", ok, err)
	}
	n := countBlocks(t, s, flows)
	if n != len(b.Blocks) {
		t.Fatalf("%d blocks stored, wrote %d", n, len(b.Blocks))
	}
	if ok, err := s.Write(ctx, b); ok || err != nil {
		t.Fatalf("repeated write: applied=%v err=%v, want false, nil", ok, err)
	}
	if got := countBlocks(t, s, flows); got != n {
		t.Fatalf("repeat changed block count %d -> %d", n, got)
	}
	// Concurrent retries of one batch: exactly one applies.
	rest := &storage.Batch{SensorID: "sensor-a", Seq: 2}
	for _, in := range ins[len(ins)/2:] {
		rest.Blocks = append(rest.Blocks, in.Blocks...)
		rest.Records = append(rest.Records, in.Record)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Write(ctx, rest)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				applied++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if applied != 1 {
		t.Fatalf("concurrent duplicate writes applied %d times, want 1", applied)
	}
	if got := countBlocks(t, s, flows); got != n+len(rest.Blocks) {
		t.Fatalf("%d blocks after concurrent writes, want %d", got, n+len(rest.Blocks))
	}
	// The same seq from another sensor is another batch.
	other := &storage.Batch{SensorID: "sensor-b", Seq: 1, Records: []flow.Record{ins[0].Record}}
	other.Records[0].SensorID = "sensor-b"
	other.Records[0].ID = flow.NewID(ins[0].Record.Start, flow.SensorHash("sensor-b"), 1)
	if ok, err := s.Write(ctx, other); !ok || err != nil {
		t.Fatalf("other sensor same seq: %v %v", ok, err)
	}
}

// testConcurrentSameFlow: batches of one sensor that carry blocks of the
// same flows are written concurrently (as when a sensor fails over to
// another collector while the first still writes, or two collectors share
// the store). Every block must stay reachable through the flow index: the
// flow ref's span is the union of all blocks' spans, whatever the
// interleaving of the index updates. The batches hold no flow records
// (whose span would cover the whole flow), as while a long flow's blocks
// arrive before its first report.
func testConcurrentSameFlow(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := largestInstances(flows, 4, 8)
	if len(ins) == 0 {
		t.Fatalf("%s has no flow of 8 packets or more", Capture)
	}
	batches := blockRounds(ins)
	writeConcurrently(t, ctx, s, batches, 8)
	if t.Failed() {
		return
	}
	for _, in := range ins {
		checkConcurrentFlow(t, s, in, len(batches))
	}
	if seq, err := s.DurableSeq(ctx, "sensor-a", 0); err != nil || seq != uint64(len(batches)) {
		t.Fatalf("durable seq %d, %v; want %d", seq, err, len(batches))
	}
}

// largestInstances returns instances of the (at most n) flows with the
// most packets, of minPackets or more, one packet per block.
func largestInstances(flows []Flow, n, minPackets int) []*Instance {
	order := make([]int, len(flows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(flows[b].Packets) - len(flows[a].Packets) })
	var ins []*Instance
	for _, i := range order[:min(n, len(order))] {
		if len(flows[i].Packets) < minPackets {
			break
		}
		ins = append(ins, NewInstance(&flows[i], "sensor-a", uint32(i+1), 0, 1))
	}
	return ins
}

// blockRounds returns the batches of ins for concurrent writers: batch k
// holds block k of every instance that has one, so that they overlap.
func blockRounds(ins []*Instance) []*storage.Batch {
	var batches []*storage.Batch
	for k := 0; ; k++ {
		b := &storage.Batch{SensorID: "sensor-a", Seq: uint64(k + 1)}
		for _, in := range ins {
			if k < len(in.Blocks) {
				b.Blocks = append(b.Blocks, in.Blocks[k])
			}
		}
		if len(b.Blocks) == 0 {
			return batches
		}
		batches = append(batches, b)
	}
}

// checkConcurrentFlow checks that the refs of an instance whose blocks
// came in nbatches concurrent batches span all of them, by flow ID and
// by Community ID, and that the ref's window holds exactly its blocks.
func checkConcurrentFlow(t *testing.T, s storage.BlockStore, in *Instance, nbatches int) {
	t.Helper()
	p := in.Flow.Packets
	first, last := p[0].Time, p[len(p)-1].Time
	refs, err := s.LookupFlow(ctx, in.ID.String(), time.Time{}, time.Time{})
	if err != nil || len(refs) != 1 {
		t.Fatalf("lookup %s: %+v, %v", in.ID, refs, err)
	}
	r := refs[0]
	if !r.First.Equal(first) || !r.Last.Equal(last) {
		t.Fatalf("flow %s (%d blocks in %d concurrent batches): ref spans %s..%s, its blocks %s..%s",
			in.ID, len(in.Blocks), nbatches, r.First.Format(time.RFC3339Nano), r.Last.Format(time.RFC3339Nano),
			first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	}
	cid := in.Blocks[0].Meta.CommunityID
	crefs, err := s.LookupFlow(ctx, cid, time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("lookup %s: %v", cid, err)
	}
	for _, c := range crefs {
		if c.FlowID == in.ID && (!c.First.Equal(first) || !c.Last.Equal(last)) {
			t.Fatalf("flow %s by community id %s: ref spans %s..%s, its blocks %s..%s", in.ID, cid,
				c.First.Format(time.RFC3339Nano), c.Last.Format(time.RFC3339Nano),
				first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
		}
	}
	// What the API does: scan the ref's window.
	got, err := scan(s, r.Key, r.First, r.Last)
	if err != nil {
		t.Fatal(err)
	}
	var mine []storage.Block
	for _, b := range got {
		if b.Meta.FlowID == in.ID {
			mine = append(mine, b)
		}
	}
	want := slices.Clone(in.Blocks)
	sortBlocks(want)
	sameBlocks(t, "blocks in the ref's window of "+in.ID.String(), mine, want)
}

func testDurableSeq(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	if seq, err := s.DurableSeq(ctx, "sensor-a", 0); seq != 0 || err != nil {
		t.Fatalf("empty store: %d, %v", seq, err)
	}
	ins := Instances(flows, "sensor-a", 0, 2)
	for _, seq := range []uint64{1, 3, 2} {
		b := &storage.Batch{SensorID: "sensor-a", Seq: seq, Blocks: ins[seq].Blocks, Records: []flow.Record{ins[seq].Record}}
		if ok, err := s.Write(ctx, b); !ok || err != nil {
			t.Fatalf("write seq %d: %v %v", seq, ok, err)
		}
		if _, err := s.Write(ctx, &storage.Batch{SensorID: "sensor-b", Seq: seq * 10}); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := s.DurableSeq(ctx, "sensor-a", 0); seq != 3 || err != nil {
		t.Fatalf("sensor-a durable seq %d, %v; want 3", seq, err)
	}
	if seq, err := s.DurableSeq(ctx, "sensor-b", 0); seq != 30 || err != nil {
		t.Fatalf("sensor-b durable seq %d, %v; want 30", seq, err)
	}
}

// testEpochDedupe: batches are identified by (sensor, epoch, seq). A
// sensor whose spool was recreated (a new epoch) restarts at seq 1; its
// batches are new data, never duplicates of the old epoch's, and each
// epoch (the legacy epoch 0 included) has its own durable seq.
func testEpochDedupe(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 3)
	write := func(epoch, seq uint64, in *Instance) bool {
		t.Helper()
		b := &storage.Batch{SensorID: "sensor-a", Epoch: epoch, Seq: seq, Blocks: in.Blocks, Records: []flow.Record{in.Record}}
		ok, err := s.Write(ctx, b)
		if err != nil {
			t.Fatalf("write epoch %d seq %d: %v", epoch, seq, err)
		}
		return ok
	}
	if !write(0, 1, ins[0]) || !write(0, 2, ins[0]) {
		t.Fatal("legacy batches not applied")
	}
	if !write(7, 1, ins[1]) {
		t.Fatal("epoch 7 seq 1 taken for a duplicate of legacy seq 1")
	}
	if !write(9, 1, ins[2]) {
		t.Fatal("epoch 9 seq 1 taken for a duplicate of epoch 7 seq 1")
	}
	if write(7, 1, ins[1]) || write(0, 2, ins[0]) {
		t.Fatal("resent batch applied twice")
	}
	for _, c := range []struct{ epoch, want uint64 }{{0, 2}, {7, 1}, {9, 1}, {8, 0}} {
		if seq, err := s.DurableSeq(ctx, "sensor-a", c.epoch); seq != c.want || err != nil {
			t.Fatalf("epoch %d durable seq %d, %v; want %d", c.epoch, seq, err, c.want)
		}
	}
	for _, in := range ins[1:3] {
		refs, err := s.LookupFlow(ctx, in.ID.String(), time.Time{}, time.Time{})
		if err != nil || len(refs) == 0 {
			t.Fatalf("flow %s of a new epoch not stored: %v", in.ID, err)
		}
	}
}

func scanRecords(t *testing.T, s storage.Reader, from, to time.Time) []flow.Record {
	t.Helper()
	var out []flow.Record
	if err := s.ScanRecords(ctx, from, to, func(r *flow.Record) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatalf("scan records %v..%v: %v", from, to, err)
	}
	return out
}

func testRecordsNewest(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	in := NewInstance(&flows[longest(flows)], "sensor-a", 1, 0, 4)
	final := in.Record
	final.Segment = 2
	mid := final
	mid.Segment, mid.Reason = 1, flow.ReasonActive
	mid.End = final.Start.Add(final.End.Sub(final.Start) / 2)
	mid.Source.Packets, mid.Destination.Packets = 1, 1
	first := mid
	first.Segment, first.End = 0, final.Start
	// Reports arrive out of order: 0, 2, then a late 1.
	for i, r := range []flow.Record{first, final, mid} {
		if ok, err := s.Write(ctx, &storage.Batch{SensorID: "sensor-a", Seq: uint64(i + 1), Records: []flow.Record{r}}); !ok || err != nil {
			t.Fatalf("write segment %d: %v %v", r.Segment, ok, err)
		}
	}
	got := scanRecords(t, s, final.Start, final.End)
	if len(got) != 1 {
		t.Fatalf("%d records, want 1 (newest segment only)", len(got))
	}
	if got[0].Segment != 2 || !got[0].End.Equal(final.End) || got[0].Source != final.Source || got[0].Destination != final.Destination ||
		got[0].Tuple != final.Tuple || got[0].ID != final.ID || got[0].CommunityID != final.CommunityID {
		t.Fatalf("record\n got %+v\nwant %+v", got[0], final)
	}
	// Two segments in one batch: the newer wins as well.
	in2 := NewInstance(&flows[0], "sensor-a", 2, time.Hour, 4)
	r0, r1 := in2.Record, in2.Record
	r1.Segment, r1.Reason = 1, flow.ReasonFIN
	if _, err := s.Write(ctx, &storage.Batch{SensorID: "sensor-a", Seq: 10, Records: []flow.Record{r1, r0}}); err != nil {
		t.Fatal(err)
	}
	got = scanRecords(t, s, r0.Start, r0.End)
	if len(got) != 1 || got[0].Segment != 1 || got[0].Reason != flow.ReasonFIN {
		t.Fatalf("same-batch segments: %+v", got)
	}
}

// testRecordsConcurrentSegments writes the reports of several long flows
// (segments 0..n-1 of each, one batch per report) from several goroutines
// at once, in a shuffled order, as when two collectors share the store or
// a sensor fails over to another collector in the middle of a flow. The
// merge rule of RecordsNewestSegment must hold whatever the interleaving:
// the stored record is the newest segment. Each segment ends later than
// the one before, in another time bucket and past the long-flow threshold
// of any sane store, so the long-flow index moves with every report: a
// window at any segment's end must find each flow exactly once, with the
// newest segment's fields (a long-flow row left behind by an older
// segment would show up as a second, stale record).
func testRecordsConcurrentSegments(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	const nflows, nseg, workers = 6, 10, 8
	if len(flows) < nflows {
		t.Fatalf("%s has %d flows, want %d", Capture, len(flows), nflows)
	}
	segs, batches := segmentBatches(flows[:nflows], nseg)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	writeConcurrently(t, ctx, s, batches, workers)
	if t.Failed() {
		return
	}
	first, last := segs[0][0].Start, segs[0][nseg-1].End
	for i := range nflows {
		first, last = minTime(first, segs[i][0].Start), maxTime(last, segs[i][nseg-1].End)
	}
	checkNewestInWindow(t, s, segs, first, last)
	for k := range nseg {
		for i := range nflows {
			e := segs[i][k].End
			checkNewestInWindow(t, s, segs, e, e)
		}
	}
	for i := range nflows {
		final := segs[i][nseg-1]
		refs, err := s.LookupFlow(ctx, final.ID.String(), time.Time{}, time.Time{})
		if err != nil || len(refs) != 1 {
			t.Fatalf("lookup %s: %+v, %v", final.ID, refs, err)
		}
		if !refs[0].First.Equal(final.Start) || !refs[0].Last.Equal(final.End) {
			t.Fatalf("flow %s: ref spans %s..%s, its newest segment %s..%s", final.ID,
				refs[0].First.Format(time.RFC3339Nano), refs[0].Last.Format(time.RFC3339Nano),
				final.Start.Format(time.RFC3339Nano), final.End.Format(time.RFC3339Nano))
		}
	}
}

// segmentBatches returns nseg segments of a long record of each flow
// (segs[flow][segment], the last ending with a FIN), and one batch of
// sensor-a per segment, in that order.
func segmentBatches(flows []Flow, nseg int) ([][]flow.Record, []*storage.Batch) {
	segs := make([][]flow.Record, len(flows))
	var batches []*storage.Batch
	for i := range flows {
		base := NewInstance(&flows[i], "sensor-a", uint32(7000+i), 0, 4).Record
		base.Start = base.Start.Add(-3 * time.Hour)
		for k := range nseg {
			r := base
			r.Segment = uint32(k)
			r.End = base.Start.Add(time.Duration(k) * 17 * time.Minute)
			r.Reason = flow.ReasonActive
			if k == nseg-1 {
				r.Reason = flow.ReasonFIN
			}
			r.Source.Packets, r.Source.Bytes = uint64(k+1), uint64(100*(k+1))
			r.Destination.Packets, r.Destination.Bytes = uint64(2*(k+1)), uint64(200*(k+1))
			segs[i] = append(segs[i], r)
			batches = append(batches, &storage.Batch{SensorID: "sensor-a", Seq: uint64(len(batches) + 1), Records: []flow.Record{r}})
		}
	}
	return segs, batches
}

// checkNewestInWindow checks that ScanRecords over [from, to] returns
// each flow of segs that overlaps it once, as its newest segment.
func checkNewestInWindow(t *testing.T, s storage.Reader, segs [][]flow.Record, from, to time.Time) {
	t.Helper()
	got := map[flow.ID][]flow.Record{}
	for _, r := range scanRecords(t, s, from, to) {
		got[r.ID] = append(got[r.ID], r)
	}
	for i := range segs {
		final := segs[i][len(segs[i])-1]
		if final.Start.After(to) || final.End.Before(from) {
			continue
		}
		rs := got[final.ID]
		var found []uint32
		for _, r := range rs {
			found = append(found, r.Segment)
		}
		if len(rs) != 1 {
			t.Fatalf("window %s..%s: flow %s returned %d times (segments %v), want once (segment %d)",
				from.Format(time.RFC3339), to.Format(time.RFC3339), final.ID, len(rs), found, final.Segment)
		}
		r := rs[0]
		if r.Segment != final.Segment || !r.Start.Equal(final.Start) || !r.End.Equal(final.End) || r.Reason != final.Reason ||
			r.Source != final.Source || r.Destination != final.Destination {
			t.Fatalf("window %s..%s: flow %s holds segment %d (end %s, reason %s), want the newest, %d (end %s, reason %s)",
				from.Format(time.RFC3339), to.Format(time.RFC3339), final.ID, r.Segment, r.End.Format(time.RFC3339), r.Reason,
				final.Segment, final.End.Format(time.RFC3339), final.Reason)
		}
	}
}

func testRecordsWindow(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 4)
	WriteInstances(t, s, "sensor-a", ins, 8, 1)
	recs := make([]flow.Record, 0, len(ins)+2)
	for _, in := range ins {
		recs = append(recs, in.Record)
	}
	// A flow that started 3 hours before the capture and ends with it,
	// and one that lasts 20 minutes: windows inside them must find them.
	long := NewInstance(&flows[0], "sensor-a", 5000, 0, 4).Record
	long.Start = long.Start.Add(-3 * time.Hour)
	mid := NewInstance(&flows[1], "sensor-a", 5001, 0, 4).Record
	mid.Start = mid.Start.Add(-20 * time.Minute)
	short := NewInstance(&flows[2], "sensor-a", 5002, 0, 4).Record
	short.Start = short.Start.Add(-5 * time.Minute)
	brief := NewInstance(&flows[3], "sensor-a", 5003, 0, 4).Record
	brief.Start = brief.Start.Add(-90 * time.Second)
	extra := []flow.Record{long, mid, short, brief}
	if _, err := s.Write(ctx, &storage.Batch{SensorID: "sensor-a", Seq: 100, Records: extra}); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, extra...)
	t0, t1 := ins[0].Record.Start, ins[0].Record.End
	for _, in := range ins {
		t0 = minTime(t0, in.Record.Start)
		t1 = maxTime(t1, in.Record.End)
	}
	type window struct{ from, to time.Time }
	windows := []window{
		{t0, t1},
		{t0.Add(-4 * time.Hour), t0.Add(-3*time.Hour - time.Second)},
		{long.Start.Add(time.Hour), long.Start.Add(time.Hour + time.Minute)},
		{mid.Start.Add(10 * time.Minute), mid.Start.Add(10*time.Minute + time.Second)},
		{short.Start.Add(4 * time.Minute), short.Start.Add(4*time.Minute + time.Second)},
		{brief.Start.Add(80 * time.Second), brief.Start.Add(81 * time.Second)},
		{t1.Add(time.Nanosecond), t1.Add(time.Hour)},
	}
	for _, r := range recs[:len(ins)] {
		windows = append(windows, window{r.Start, r.Start}, window{r.End, r.End.Add(time.Second)},
			window{r.Start.Add(r.End.Sub(r.Start) / 2), r.Start.Add(r.End.Sub(r.Start) / 2)})
	}
	for _, w := range windows {
		checkRecordsWindow(t, s, recs, w.from, w.to)
	}
	if err := s.ScanRecords(ctx, time.Time{}, t1, func(*flow.Record) error { return nil }); err == nil {
		t.Fatal("ScanRecords without from succeeded")
	}
}

// checkRecordsWindow checks that ScanRecords over [from, to] returns, in
// start order, exactly the records of recs that overlap it.
func checkRecordsWindow(t *testing.T, s storage.Reader, recs []flow.Record, from, to time.Time) {
	t.Helper()
	got := scanRecords(t, s, from, to)
	var want []flow.ID
	for _, r := range recs {
		if !r.Start.After(to) && !r.End.Before(from) {
			want = append(want, r.ID)
		}
	}
	var ids []flow.ID
	for i, r := range got {
		ids = append(ids, r.ID)
		if i > 0 && r.Start.Before(got[i-1].Start) {
			t.Fatalf("window %v..%v: record %d starts %v before %v", from, to, i, r.Start, got[i-1].Start)
		}
	}
	slices.SortFunc(want, func(a, b flow.ID) int { return bytes.Compare(a[:], b[:]) })
	slices.SortFunc(ids, func(a, b flow.ID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(ids, want) {
		t.Fatalf("window %v..%v: records %v, want %v", from, to, ids, want)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func allBlocks(ins []*Instance) []storage.Block {
	var out []storage.Block
	for _, in := range ins {
		out = append(out, in.Blocks...)
	}
	return out
}

func testExpireAge(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 2)
	WriteInstances(t, s, "sensor-a", ins, 5, 1)
	all := allBlocks(ins)
	lasts := make([]int64, len(all))
	for i, b := range all {
		lasts[i] = b.Meta.Last
	}
	slices.Sort(lasts)
	cutoff := time.Unix(0, lasts[len(lasts)/2]) // a block ends exactly here: it stays
	var wantBlocks, wantBytes int64
	for _, b := range all {
		if b.Meta.Last < cutoff.UnixNano() {
			wantBlocks++
			wantBytes += int64(len(b.Encoded))
		}
	}
	st, err := s.Expire(ctx, cutoff, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks != wantBlocks || st.Bytes != wantBytes {
		t.Fatalf("expired %+v, want %d blocks %d bytes", st, wantBlocks, wantBytes)
	}
	checkAfterExpire(t, s, flows, ins, func(b storage.Block) bool { return b.Meta.Last >= cutoff.UnixNano() })
	if st, err := s.Expire(ctx, cutoff, 0); err != nil || st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("second expire: %+v %v", st, err)
	}
}

// checkAfterExpire checks every flow keeps exactly the blocks kept says,
// that flows with removed blocks answer ErrPacketsExpired (after the kept
// blocks), and that their records and index entries remain.
func checkAfterExpire(t *testing.T, s storage.BlockStore, flows []Flow, ins []*Instance, kept func(storage.Block) bool) {
	t.Helper()
	gone, whole := 0, 0
	for i, in := range ins {
		var want []storage.Block
		removed := false
		for _, b := range in.Blocks {
			if kept(b) {
				want = append(want, b)
			} else {
				removed = true
			}
		}
		got, err := scan(s, flows[i].Key, time.Time{}, time.Time{})
		if removed != errors.Is(err, storage.ErrPacketsExpired) || (err != nil && !removed) {
			t.Fatalf("flow %s: removed=%v, scan error %v", flows[i].Key, removed, err)
		}
		sameBlocks(t, flows[i].Key.String(), got, want)
		if removed {
			gone++
			if len(want) == 0 {
				whole++
			}
			if len(want) > 0 {
				// A window after the removed blocks is complete.
				w := time.Unix(0, want[len(want)-1].Meta.Last)
				last := time.Unix(0, in.Blocks[len(in.Blocks)-1].Meta.Last)
				got, err := scan(s, flows[i].Key, w, last)
				if err != nil {
					t.Fatalf("flow %s window after removed blocks: %v", flows[i].Key, err)
				}
				sameBlocks(t, "kept window", got, overlapping(want, w, last))
			}
		}
		refs, err := s.LookupFlow(ctx, in.Record.CommunityID, time.Time{}, time.Time{})
		if err != nil || len(refs) != 1 || refs[0].FlowID != in.ID {
			t.Fatalf("lookup %s after expire: %+v %v", in.Record.CommunityID, refs, err)
		}
		recs := scanRecords(t, s, in.Record.Start, in.Record.End)
		if !slices.ContainsFunc(recs, func(r flow.Record) bool { return r.ID == in.ID }) {
			t.Fatalf("record of %s gone after expire", in.ID)
		}
	}
	if gone == 0 || whole == 0 || gone == len(ins) {
		t.Fatalf("test data: %d of %d flows lost blocks, %d all of them; want some, not all", gone, len(ins), whole)
	}
	// A key never stored: no blocks, no error.
	k := flows[0].Key
	k.VLAN = 4000
	if got, err := scan(s, k, time.Time{}, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("unknown key: %d blocks, %v", len(got), err)
	}
}

func testExpireSize(t *testing.T, s storage.BlockStore, flows []Flow) {
	defer closeStore(t, s)
	ins := Instances(flows, "sensor-a", 0, 2)
	WriteInstances(t, s, "sensor-a", ins, 5, 1)
	all := allBlocks(ins)
	var total int64
	for _, b := range all {
		total += int64(len(b.Encoded))
	}
	budget := total / 3
	st, err := s.Expire(ctx, time.Time{}, budget)
	if err != nil {
		t.Fatal(err)
	}
	// What stayed: read it back.
	var keptSet []storage.Block
	for i := range flows {
		got, _ := scan(s, flows[i].Key, time.Time{}, time.Time{})
		keptSet = append(keptSet, got...)
	}
	isKept := func(b storage.Block) bool {
		return slices.ContainsFunc(keptSet, func(k storage.Block) bool { return bytes.Equal(k.Encoded, b.Encoded) })
	}
	var kept, maxRemovedLast int64 = 0, -1 << 63
	var lastRemovedSize int64
	minKeptLast := int64(1<<63 - 1)
	for _, b := range all {
		if isKept(b) {
			kept += int64(len(b.Encoded))
			minKeptLast = min(minKeptLast, b.Meta.Last)
		} else if b.Meta.Last >= maxRemovedLast {
			maxRemovedLast, lastRemovedSize = b.Meta.Last, int64(len(b.Encoded))
		}
	}
	if kept > budget {
		t.Fatalf("kept %d bytes over budget %d", kept, budget)
	}
	if kept+lastRemovedSize <= budget {
		t.Fatalf("over-deleted: kept %d + newest removed block %d still fits budget %d", kept, lastRemovedSize, budget)
	}
	if maxRemovedLast > minKeptLast {
		t.Fatalf("removed a block ending %d but kept one ending %d", maxRemovedLast, minKeptLast)
	}
	if st.Bytes != total-kept || st.Blocks != int64(len(all)-len(keptSet)) {
		t.Fatalf("stats %+v, want %d blocks %d bytes", st, len(all)-len(keptSet), total-kept)
	}
	checkAfterExpire(t, s, flows, ins, isKept)
	if st, err := s.Expire(ctx, time.Time{}, budget); err != nil || st.Blocks != 0 {
		t.Fatalf("second expire: %+v %v", st, err)
	}
}

func testClose(t *testing.T, s storage.BlockStore) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	var k flow.Key
	checks := map[string]error{}
	_, checks["Write"] = s.Write(ctx, &storage.Batch{SensorID: "s", Seq: 1})
	_, checks["DurableSeq"] = s.DurableSeq(ctx, "s", 0)
	_, checks["LookupFlow"] = s.LookupFlow(ctx, flow.NewID(time.Unix(1, 0), 1, 1).String(), time.Time{}, time.Time{})
	checks["ScanBlocks"] = s.ScanBlocks(ctx, k, time.Time{}, time.Time{}, func(*storage.Block) error { return nil })
	checks["ScanRecords"] = s.ScanRecords(ctx, time.Unix(1, 0), time.Unix(2, 0), func(*flow.Record) error { return nil })
	_, checks["Expire"] = s.Expire(ctx, time.Unix(1, 0), 0)
	for name, err := range checks {
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// writeConcurrently writes batches from the given number of goroutines at
// once, each taking the next batch in order, and reports every write that
// fails or is not applied.
func writeConcurrently(t *testing.T, ctx context.Context, s storage.BlockStore, batches []*storage.Batch, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan *storage.Batch)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				if ok, err := s.Write(ctx, b); !ok || err != nil {
					t.Errorf("write seq %d: applied=%v err=%v", b.Seq, ok, err)
				}
			}
		}()
	}
	for _, b := range batches {
		next <- b
	}
	close(next)
	wg.Wait()
}
