package output

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func testRecord() *flow.Record {
	start := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	tp := flow.Tuple{Src: flow.AddrFrom4([4]byte{10, 0, 0, 1}), Dst: flow.AddrFrom4([4]byte{10, 0, 0, 2}),
		SrcPort: 40000, DstPort: 443, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}
	return &flow.Record{ID: flow.NewID(start, flow.SensorHash("s"), 1), SensorID: "s", Interface: "eth0",
		CommunityID: flow.CommunityID(0, tp), Tuple: tp,
		Source:      flow.DirStats{Packets: 3, Bytes: 300},
		Destination: flow.DirStats{Packets: 2, Bytes: 200},
		Start:       start, End: start.Add(time.Second), Reason: flow.ReasonFIN}
}

// TestFlowsJSONLines: each record is its MarshalJSON bytes and a newline.
func TestFlowsJSONLines(t *testing.T) {
	var buf bytes.Buffer
	f := NewFlowsJSON(&buf, nil)
	rec := testRecord()
	for i := 0; i < 3; i++ {
		if err := f.AddRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	one, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat(append(one, '\n'), 3)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got %s\nwant %s", buf.Bytes(), want)
	}
}

// TestFlowsJSONAllocations: writing a record allocates no more than
// rendering it as ECS does (encoding/json's reflection, time copies and
// result slice were most of --flows-out's cost on a many-flows trace).
func TestFlowsJSONAllocations(t *testing.T) {
	f := NewFlowsJSON(io.Discard, nil)
	rec := testRecord()
	if err := f.AddRecord(rec); err != nil { // grows the line buffer once
		t.Fatal(err)
	}
	toECS := testing.AllocsPerRun(200, func() { rec.ToECS() })
	add := testing.AllocsPerRun(200, func() {
		if err := f.AddRecord(rec); err != nil {
			t.Fatal(err)
		}
	})
	if add > toECS {
		t.Fatalf("AddRecord: %.0f allocations, ToECS alone %.0f", add, toECS)
	}
}
