package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tapir-sensor/tapir/flow"
)

// TestSparkline draws a timeline encoded with go-tsz and rendered to ECS
// the way the collector serves it: one column per interval, the busiest
// interval full height, empty intervals blank, long timelines folded.
func TestSparkline(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	pts := []flow.TimelinePoint{{Start: start, Packets: 8, Bytes: 800}, {Start: start.Add(2 * time.Second), Packets: 1, Bytes: 60},
		{Start: start.Add(4 * time.Second), Packets: 4, Bytes: 300}}
	r := flow.Record{Start: start, End: start.Add(5 * time.Second), Timeline: flow.EncodeTimeline(time.Second, pts, 0)}
	e := r.ToECS()
	x := e.Tapir.Timeline
	tl := &ecsTimeline{IntervalMs: x.IntervalMs, OffsetMs: x.OffsetMs, Packets: x.Packets, Bytes: x.Bytes}
	line, col := sparkline(tl)
	if line != "█ ▁ ▄" || col != time.Second {
		t.Fatalf("sparkline %q per %v", line, col)
	}
	// 600 one-second intervals fold into 60 columns of 10 s
	pts = pts[:0]
	for i := 0; i < 600; i++ {
		pts = append(pts, flow.TimelinePoint{Start: start.Add(time.Duration(i) * time.Second), Packets: uint64(1 + i/100), Bytes: 1})
	}
	r.Timeline = flow.EncodeTimeline(time.Second, pts, 0)
	x = r.ToECS().Tapir.Timeline
	line, col = sparkline(&ecsTimeline{IntervalMs: x.IntervalMs, OffsetMs: x.OffsetMs, Packets: x.Packets})
	if utf8.RuneCountInString(line) != 60 || col != 10*time.Second || !strings.HasSuffix(line, "█") || strings.Contains(line, " ") {
		t.Fatalf("folded sparkline %q per %v", line, col)
	}
}
