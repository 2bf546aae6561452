package flow_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// timelineRecord is sampleRecord with a timeline of several points.
func timelineRecord() *flow.Record {
	r := sampleRecord()
	var pts []flow.TimelinePoint
	for i := 0; i < 40; i++ {
		pts = append(pts, flow.TimelinePoint{Start: r.Start.Add(time.Duration(i*3) * time.Second), Packets: uint64(1 + i%7), Bytes: uint64(60 + 97*i)})
	}
	r.Timeline = flow.EncodeTimeline(time.Second, pts, 0)
	return r
}

// TestTimelineDecodeTwice: decoding must not consume the stored bytes
// (go-tsz's reader shifts the slice it is given in place).
func TestTimelineDecodeTwice(t *testing.T) {
	tl := timelineRecord().Timeline
	stored := append([]byte(nil), tl.Packets...)
	first, err := tl.Decode()
	if err != nil || len(first) != 40 {
		t.Fatalf("first decode: %d points, %v", len(first), err)
	}
	second, err := tl.Decode()
	if err != nil {
		t.Fatalf("second decode: %v", err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("second decode differs:\n%v\n%v", first, second)
	}
	if !bytes.Equal(stored, tl.Packets) {
		t.Fatal("decode changed the stored packets series")
	}
}

// TestRecordMarshalTwice: rendering a record is idempotent, timeline
// included.
func TestRecordMarshalTwice(t *testing.T) {
	r := timelineRecord()
	a, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("second marshal differs:\n%s\n%s", a, b)
	}
	if bytes.Contains(a, []byte(`"error"`)) {
		t.Fatalf("timeline error in %s", a)
	}
}
