package plan_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
	"github.com/tapir-sensor/tapir/storage/rowkey"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

var layout = plan.Layout{Bucket: int64(time.Minute), Long: int64(30 * time.Minute)}

func instances(t *testing.T) []*storagetest.Instance {
	t.Helper()
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	return storagetest.Instances(flows, "sensor-a", 0, 3)
}

// TestRecordEncoding: the stored form of every capture flow's record
// decodes to the same record, is storage/recordcodec's versioned format
// (not the wire message), appends to dst, and a value earlier releases
// stored (the wire message) still decodes to the same record.
func TestRecordEncoding(t *testing.T) {
	for _, in := range instances(t) {
		v, err := plan.EncodeRecord(nil, &in.Record)
		if err != nil {
			t.Fatal(err)
		}
		var pb tapirv1.FlowRecord
		old, err := proto.Marshal(tapirv1.FromRecord(&in.Record, &pb))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) < 2 || v[0] != 0xff || v[1] != recordcodec.Version || bytes.Equal(v, old) {
			t.Fatalf("record %s: stored form % x... is not recordcodec version %d", in.ID, v[:min(len(v), 4)], recordcodec.Version)
		}
		var legacy flow.Record
		if err := plan.DecodeRecord(old, &legacy); err != nil {
			t.Fatalf("record %s: a legacy (wire) value does not decode: %v", in.ID, err)
		}
		if again, _ := plan.EncodeRecord(nil, &legacy); !bytes.Equal(again, v) {
			t.Fatalf("record %s: the legacy value decodes to another record", in.ID)
		}
		var got flow.Record
		if err := plan.DecodeRecord(v, &got); err != nil {
			t.Fatal(err)
		}
		again, _ := plan.EncodeRecord(nil, &got)
		if !bytes.Equal(again, v) || got.ID != in.ID || !got.Start.Equal(in.Record.Start) || !got.End.Equal(in.Record.End) {
			t.Fatalf("record %s: decoded %+v, want %+v", in.ID, got, in.Record)
		}
		if w, _ := plan.EncodeRecord([]byte("xy"), &in.Record); !bytes.Equal(w, append([]byte("xy"), v...)) {
			t.Fatalf("record %s: EncodeRecord does not append to dst", in.ID)
		}
	}
	if err := plan.DecodeRecord([]byte{0xff, 0xff}, new(flow.Record)); err == nil {
		t.Fatal("DecodeRecord of garbage succeeded")
	}
}

// TestPlanBatch: one row per block (a block sent twice in a batch once),
// the batch's sensor filled in, refs spanning the blocks, the newest
// segment of each record, and invalid batches refused.
func TestPlanBatch(t *testing.T) {
	ins := instances(t)[:3]
	b := &storage.Batch{SensorID: "sensor-a", Seq: 7}
	var want int
	for _, in := range ins {
		b.Blocks = append(b.Blocks, in.Blocks...)
		want += len(in.Blocks)
		older, newer := in.Record, in.Record
		older.Segment, newer.Segment = 1, 2
		newer.SensorID = ""
		b.Records = append(b.Records, newer, older)
	}
	b.Blocks = append(b.Blocks, ins[0].Blocks[0])
	b.Blocks[0].Meta.SensorID = ""
	p, err := layout.Plan(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Blocks) != want {
		t.Fatalf("%d block rows, want %d", len(p.Blocks), want)
	}
	if p.Blocks[0].Meta.SensorID != "sensor-a" {
		t.Fatalf("block without sensor keyed as %q", p.Blocks[0].Meta.SensorID)
	}
	if len(p.Records) != len(ins) {
		t.Fatalf("%d records, want %d", len(p.Records), len(ins))
	}
	for i, r := range p.Records {
		if r.ID != ins[i].ID || r.Segment != 2 || r.SensorID != "sensor-a" {
			t.Fatalf("record %d: %s segment %d sensor %q, want %s segment 2 sensor-a", i, r.ID, r.Segment, r.SensorID, ins[i].ID)
		}
	}
	for _, in := range ins {
		ref := p.Refs[in.ID]
		if ref == nil || ref.First.UnixNano() != in.Blocks[0].Meta.First || ref.Last.UnixNano() != in.Blocks[len(in.Blocks)-1].Meta.Last {
			t.Fatalf("ref of %s: %+v", in.ID, ref)
		}
	}
	if b.Records[0].SensorID != "" {
		t.Fatal("Plan changed the batch's records")
	}
	if _, err := layout.Plan(&storage.Batch{Seq: 1}); !errors.Is(err, storage.ErrInvalidBatch) {
		t.Fatalf("batch without sensor: %v, want ErrInvalidBatch", err)
	}
}

// TestLookup: Community IDs scan the Community ID index, flow IDs read
// one row, anything else is an unknown flow; the window filters refs.
func TestLookup(t *testing.T) {
	in := instances(t)[0]
	q, err := plan.NewLookup(in.Record.CommunityID, time.Time{}, time.Time{})
	if err != nil || !q.ByCommunity() {
		t.Fatalf("community id: %v", err)
	}
	cid, _ := rowkey.ParseCommunityID(in.Record.CommunityID)
	if ck, _ := plan.CommunityKey(in.Record.CommunityID, in.ID); !bytes.HasPrefix(ck, q.CommunityPrefix()) || !bytes.HasSuffix(q.CommunityPrefix(), cid[:]) {
		t.Fatal("Community ID index row outside the lookup's prefix")
	}
	if _, err := q.Result(); !errors.Is(err, storage.ErrFlowUnknown) {
		t.Fatalf("empty result: %v, want ErrFlowUnknown", err)
	}
	ref := plan.RecordRef(&in.Record)
	q, err = plan.NewLookup(in.ID.String(), in.Record.End.Add(time.Second), time.Time{})
	if err != nil || q.ByCommunity() || !bytes.Equal(q.FlowIDKey(), plan.FlowIDKey(in.ID)) {
		t.Fatalf("flow id: %v", err)
	}
	q.Keep(&ref)
	if _, err := q.Result(); !errors.Is(err, storage.ErrFlowUnknown) {
		t.Fatalf("ref before the window kept: %v", err)
	}
	q, _ = plan.NewLookup(in.ID.String(), in.Record.Start, in.Record.Start)
	if err := q.KeepValue(rowkey.AppendRef(nil, &ref)); err != nil {
		t.Fatal(err)
	}
	if refs, err := q.Result(); err != nil || len(refs) != 1 || refs[0].FlowID != in.ID {
		t.Fatalf("ref in the window: %+v %v", refs, err)
	}
	if _, err := plan.NewLookup("not-an-id", time.Time{}, time.Time{}); !errors.Is(err, storage.ErrFlowUnknown) {
		t.Fatalf("junk id: %v, want ErrFlowUnknown", err)
	}
}

// TestBlockScan: every block of a flow that overlaps the window lies in
// the scan's row range and passes its filter, every other block fails
// the filter, with blocks longer than a bucket reaching into the window.
func TestBlockScan(t *testing.T) {
	for _, in := range instances(t) {
		p, _ := layout.Plan(&storage.Batch{SensorID: "sensor-a", Blocks: in.Blocks})
		var maxSpan int64
		for _, row := range p.Blocks {
			maxSpan = max(maxSpan, row.Meta.Last-row.Meta.First)
		}
		for _, row := range p.Blocks {
			from, to := time.Unix(0, row.Meta.Last), time.Unix(0, row.Meta.Last)
			sc := layout.BlockScan(in.Flow.Key, from, to, maxSpan)
			if bytes.Compare(row.Key, sc.Lower) < 0 || bytes.Compare(row.Key, sc.Upper) >= 0 {
				t.Fatalf("block %s/%d outside the range of a window on its last packet", in.ID, row.Meta.Seq)
			}
			for _, other := range p.Blocks {
				var blk storage.Block
				in2, err := sc.Decode(other.Key, other.AppendValue(nil), &blk)
				want := other.Meta.First <= to.UnixNano() && other.Meta.Last >= from.UnixNano()
				if err != nil || in2 != want || !bytes.Equal(blk.Encoded, other.Encoded) {
					t.Fatalf("block %s/%d in window of %d: %v %v, want %v", in.ID, other.Meta.Seq, row.Meta.Seq, in2, err, want)
				}
			}
		}
	}
}

// TestExpiry: retention walks the age index of the capture's blocks and
// stops at the first block that is new enough once the data fits.
func TestExpiry(t *testing.T) {
	var rows []plan.BlockRow
	var total int64
	for _, in := range instances(t) {
		p, _ := layout.Plan(&storage.Batch{SensorID: "sensor-a", Blocks: in.Blocks})
		rows = append(rows, p.Blocks...)
		total += p.Bytes
	}
	slices.SortFunc(rows, func(a, b plan.BlockRow) int { return bytes.Compare(a.AgeKey(), b.AgeKey()) })
	mid := rows[len(rows)/2].Meta.Last
	for _, c := range []struct {
		name      string
		olderThan time.Time
		maxBytes  int64
	}{{"age", time.Unix(0, mid), 0}, {"size", time.Time{}, total / 3}} {
		e := plan.NewExpiry(c.olderThan, c.maxBytes, total)
		spans := make(plan.Spans)
		var removed []plan.Victim
		for _, row := range rows {
			v, more, err := e.Next(row.AgeKey(), row.AgeValue())
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				break
			}
			if !bytes.Equal(v.BlockKey, row.Key) || v.Size != row.Size() {
				t.Fatalf("%s: victim %x, want %x", c.name, v.BlockKey, row.Key)
			}
			spans.Add(&v)
			removed = append(removed, v)
		}
		for i, row := range rows {
			gone := i < len(removed)
			byAge := !c.olderThan.IsZero() && row.Meta.Last < mid
			if c.maxBytes == 0 && gone != byAge {
				t.Fatalf("%s: block %d (last %d) removed %v, cutoff %d", c.name, i, row.Meta.Last, gone, mid)
			}
		}
		if c.maxBytes > 0 && (e.DataBytes > c.maxBytes || e.DataBytes+removed[len(removed)-1].Size <= c.maxBytes) {
			t.Fatalf("%s: %d bytes left of %d, budget %d", c.name, e.DataBytes, total, c.maxBytes)
		}
		for _, v := range removed {
			sp := spans[string(v.BlockKey[1:1+rowkey.FlowPrefixLen])]
			if sp.First > v.First || sp.Last < v.Last {
				t.Fatalf("%s: span %+v does not hold a removed block %d..%d", c.name, sp, v.First, v.Last)
			}
		}
	}
}

// TestWiden: a removed span only grows.
func TestWiden(t *testing.T) {
	sp := rowkey.Span{First: 10, Last: 20}
	if got, changed, err := plan.Widen(sp, nil, false); err != nil || !changed || got != sp {
		t.Fatalf("no stored span: %+v %v %v", got, changed, err)
	}
	old := rowkey.AppendSpan(nil, rowkey.Span{First: 5, Last: 30})
	if got, changed, err := plan.Widen(sp, old, true); err != nil || changed || got != (rowkey.Span{First: 5, Last: 30}) {
		t.Fatalf("inside the stored span: %+v %v %v", got, changed, err)
	}
	old = rowkey.AppendSpan(nil, rowkey.Span{First: 15, Last: 18})
	if got, changed, err := plan.Widen(sp, old, true); err != nil || !changed || got != sp {
		t.Fatalf("wider than the stored span: %+v %v %v", got, changed, err)
	}
}

// TestRecordScan: a long flow that started before the start-time range
// comes from the long-flow index, in start order; both ends are needed.
func TestRecordScan(t *testing.T) {
	ins := instances(t)
	from := ins[0].Record.Start
	p, err := layout.RecordScan(from, from.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	for i, in := range ins[:3] {
		r := in.Record
		r.Start = from.Add(-time.Duration(3-i) * time.Hour)
		r.End = from.Add(time.Minute)
		recs = append(recs, r)
	}
	outside := ins[3].Record
	outside.Start, outside.End = from.Add(-5*time.Hour), from.Add(-4*time.Hour)
	for _, r := range []flow.Record{recs[2], outside, recs[0], recs[1]} {
		if !layout.IsLong(&r) || bytes.Compare(layout.LongKey(&r), p.LongLower) < 0 && r.End.After(from) {
			t.Fatalf("record %s: not indexed as a long flow in the scan's range", r.ID)
		}
		p.AddLong(&r)
	}
	var got []flow.ID
	if err := p.EmitEarlier(func(r *flow.Record) error { got = append(got, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []flow.ID{recs[0].ID, recs[1].ID, recs[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("earlier records %v, want %v", got, want)
	}
	if _, err := layout.RecordScan(time.Time{}, from); !errors.Is(err, plan.ErrRecordWindow) {
		t.Fatalf("no from: %v", err)
	}
}
