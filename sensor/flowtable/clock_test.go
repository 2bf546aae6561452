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
		{200 * s, 302 * s, 2}, // forward moves are time passing
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
