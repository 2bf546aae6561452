package flowtable

import (
	"testing"
	"time"
)

func TestClockNeverRunsBackwards(t *testing.T) {
	s := int64(time.Second)
	var c Clock
	for i, tc := range []struct {
		ts, want int64
		steps    uint64
	}{
		{100 * s, 100 * s, 0},
		{101 * s, 101 * s, 0},
		{101*s - s/2, 101 * s, 0}, // reordered by 0.5 s: no move, no step
		{102 * s, 102 * s, 0},
		{10 * s, 102 * s, 1}, // step back: the clock holds
		{12 * s, 104 * s, 1}, // and advances with packet time from there
		{12*s - s/4, 104 * s, 1},
		{2 * s, 104 * s, 2},
		{200 * s, 202 * s, 2}, // back past the latest time seen (102 s): 98 s pass
	} {
		if got := c.Observe(tc.ts); got != tc.want {
			t.Fatalf("step %d: Observe(%d) = %d, want %d", i, tc.ts, got, tc.want)
		}
		if n, _, _ := c.Steps(); n != tc.steps {
			t.Fatalf("step %d: %d steps, want %d", i, n, tc.steps)
		}
	}
	if _, from, to := c.Steps(); from != 102*s || to != 10*s {
		t.Fatalf("first step %d -> %d", from, to)
	}
}

// TestClockStrayTimestamp: one packet stamped 0 (pcapng packets without
// a timestamp) amid real times is a step back, and the return to real
// time does not make the clock leap by decades.
func TestClockStrayTimestamp(t *testing.T) {
	const T = int64(1340954905298858000)
	var c Clock
	for i, tc := range []struct{ ts, want int64 }{
		{T, T},
		{0, T},
		{T + 2e6, T + 2e6},
		{T + 3e6, T + 3e6},
	} {
		if got := c.Observe(tc.ts); got != tc.want {
			t.Fatalf("packet %d: Observe(%d) = %d, want %d", i, tc.ts, got, tc.want)
		}
	}
}
