package flow

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	tsz "github.com/tsenart/go-tsz"
)

// Timeline is a flow's activity over time: packets and bytes (both
// directions) per interval, one point per interval that saw packets
// (empty intervals are left out), each series compressed with go-tsz
// (Gorilla delta-of-delta timestamps in milliseconds, XOR-compressed
// float64 values). Points are capped per flow; Cut counts the intervals
// that were not kept. Timeline values are immutable once built.
type Timeline struct {
	Interval time.Duration // bucket width
	Points   uint32        // intervals kept
	Cut      uint32        // intervals that saw packets but were past the cap
	Packets  []byte        // go-tsz stream: bucket start (Unix ms) -> packets
	Bytes    []byte        // go-tsz stream: bucket start (Unix ms) -> bytes
}

// TimelinePoint is one decoded interval.
type TimelinePoint struct {
	Start   time.Time // start of the interval
	Packets uint64
	Bytes   uint64
}

// ErrBadTimeline is returned when a timeline does not decode.
var ErrBadTimeline = errors.New("flow: malformed timeline")

// maxTimelinePoints bounds what Decode accepts from the wire.
const maxTimelinePoints = 1 << 20

// Decode returns the timeline's points in time order. It does not modify
// the timeline and is safe for concurrent use.
func (tl *Timeline) Decode() ([]TimelinePoint, error) {
	if tl == nil || tl.Points == 0 {
		return nil, nil
	}
	if tl.Points > maxTimelinePoints {
		return nil, fmt.Errorf("%w: %d points", ErrBadTimeline, tl.Points)
	}
	// go-tsz's reader advances through the slice it is given by shifting
	// its bytes in place: hand it copies, or the first Decode destroys
	// the stored series (and concurrent readers race).
	pi, err := tsz.NewIterator(bytes.Clone(tl.Packets))
	if err != nil {
		return nil, fmt.Errorf("%w: packets: %v", ErrBadTimeline, err)
	}
	bi, err := tsz.NewIterator(bytes.Clone(tl.Bytes))
	if err != nil {
		return nil, fmt.Errorf("%w: bytes: %v", ErrBadTimeline, err)
	}
	out := make([]TimelinePoint, 0, tl.Points)
	for pi.Next() {
		if !bi.Next() || len(out) == int(tl.Points) {
			return nil, fmt.Errorf("%w: series disagree", ErrBadTimeline)
		}
		t, p := pi.Values()
		t2, b := bi.Values()
		if t != t2 || p < 0 || b < 0 || p > math.MaxInt64 || b > math.MaxInt64 {
			return nil, fmt.Errorf("%w: point %d", ErrBadTimeline, len(out))
		}
		out = append(out, TimelinePoint{Start: time.UnixMilli(int64(t)).UTC(), Packets: uint64(p), Bytes: uint64(b)})
	}
	if pi.Err() != nil || bi.Err() != nil || bi.Next() || len(out) != int(tl.Points) {
		return nil, fmt.Errorf("%w: %d of %d points", ErrBadTimeline, len(out), tl.Points)
	}
	return out, nil
}

// EncodeTimeline builds a Timeline from points in increasing time order
// (times are truncated to milliseconds; points at or before the previous
// one are dropped). maxPoints caps the points kept (0: no cap); the rest
// count in Cut.
func EncodeTimeline(interval time.Duration, points []TimelinePoint, maxPoints int) *Timeline {
	var b TimelineBuilder
	b.Init(interval, maxPoints)
	for _, p := range points {
		b.Add(p.Start.UnixMilli(), p.Packets, p.Bytes)
	}
	return b.Timeline(0, 0, 0)
}

// TimelineBuilder accumulates a flow's timeline one interval at a time.
// It is not safe for concurrent use. The zero value is unusable: call
// Init.
type TimelineBuilder struct {
	interval time.Duration
	max      uint32
	points   uint32
	cut      uint32
	last     int64
	pkts     *tsz.Series
	bytes    *tsz.Series
}

// Init resets the builder for intervals of the given width, keeping at
// most maxPoints points (0: no cap).
func (b *TimelineBuilder) Init(interval time.Duration, maxPoints int) {
	*b = TimelineBuilder{interval: interval, max: uint32(maxPoints)}
	if maxPoints <= 0 {
		b.max = math.MaxUint32
	}
}

// Points returns the number of points kept so far.
func (b *TimelineBuilder) Points() uint32 { return b.points }

// Add appends an interval starting at ms (Unix milliseconds, > 0) with its
// packet and byte counts. Intervals must come in increasing time order;
// one at or before the previous is ignored.
func (b *TimelineBuilder) Add(ms int64, packets, bytes uint64) {
	if ms <= 0 || ms <= b.last || packets == 0 {
		return
	}
	if b.points >= b.max {
		b.cut++
		return
	}
	if b.pkts == nil {
		// go-tsz: t0 is the block start; the first delta has 27 bits,
		// so the first point sits at t0 itself.
		b.pkts, b.bytes = tsz.New(uint64(ms)), tsz.New(uint64(ms))
	}
	b.pkts.Push(uint64(ms), float64(packets))
	b.bytes.Push(uint64(ms), float64(bytes))
	b.last = ms
	b.points++
}

// Timeline returns the timeline so far plus an open interval starting at
// ms with the given counts (none when packets is 0), without changing the
// builder: the result owns its bytes.
func (b *TimelineBuilder) Timeline(ms int64, packets, bytes uint64) *Timeline {
	tl := &Timeline{Interval: b.interval, Points: b.points, Cut: b.cut}
	var p, y *tsz.Series
	t0 := uint64(ms)
	if b.pkts != nil {
		t0 = b.pkts.T0
	}
	if t0 == 0 {
		return tl
	}
	p, y = tsz.New(t0), tsz.New(t0)
	if b.pkts != nil {
		// Copy through iterators: go-tsz cannot finish a copy of an open
		// series otherwise.
		pi, bi := b.pkts.Iter(), b.bytes.Iter()
		for pi.Next() && bi.Next() {
			t, v := pi.Values()
			p.Push(t, v)
			_, v = bi.Values()
			y.Push(t, v)
		}
	}
	if packets > 0 && ms > b.last {
		if tl.Points < b.max {
			p.Push(uint64(ms), float64(packets))
			y.Push(uint64(ms), float64(bytes))
			tl.Points++
		} else {
			tl.Cut++
		}
	}
	p.Finish()
	y.Finish()
	tl.Packets, tl.Bytes = p.Bytes(), y.Bytes()
	return tl
}

// ECSTimeline is tapir.timeline: the decoded points, as offsets from the
// flow's start in milliseconds.
type ECSTimeline struct {
	IntervalMs int64    `json:"interval_ms"`
	Points     uint32   `json:"points"`
	Cut        uint32   `json:"cut,omitempty"`
	OffsetMs   []int64  `json:"offset_ms"`
	Packets    []uint64 `json:"packets"`
	Bytes      []uint64 `json:"bytes"`
	Error      string   `json:"error,omitempty"`
}

func (tl *Timeline) addECS(e *ECS, start time.Time) {
	x := &ECSTimeline{IntervalMs: tl.Interval.Milliseconds(), Points: tl.Points, Cut: tl.Cut}
	pts, err := tl.Decode()
	if err != nil {
		x.Error = err.Error()
	}
	for _, p := range pts {
		x.OffsetMs = append(x.OffsetMs, p.Start.Sub(start).Milliseconds())
		x.Packets = append(x.Packets, p.Packets)
		x.Bytes = append(x.Bytes, p.Bytes)
	}
	e.Tapir.Timeline = x
}
