package registry

import (
	"testing"
	"time"
)

// TestHistorySamples: reports closer than the interval are not sampled;
// rates and drops are per interval; a counter that went down (sensor
// restart) counts its whole value; the ring keeps the newest samples.
func TestHistorySamples(t *testing.T) {
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetHistory(10*time.Second, 3)
	s := r.Connect(Info{ID: "s1"}, "10.0.0.1:1", 0)
	t0 := time.Unix(1000, 0)
	report := func(sec int, packets, bytes, drops, spool uint64) {
		s.Stats(t0.Add(time.Duration(sec)*time.Second), map[string]uint64{"packets": packets, "wire_bytes": bytes,
			"kernel_drops": drops, "spool_bytes": spool})
	}
	report(0, 100, 1000, 0, 0)
	report(5, 150, 1500, 1, 0) // inside the interval: not sampled
	report(10, 1100, 11000, 4, 77)
	report(20, 50, 500, 2, 0) // restarted: counters went down
	h, ok := r.History("s1", time.Time{})
	if !ok || len(h) != 3 {
		t.Fatalf("history %v %+v", ok, h)
	}
	if h[1].PacketsPerSec != 100 || h[1].BytesPerSec != 1000 || h[1].Drops["ring"] != 4 || h[1].SpoolBytes != 77 || !h[1].Connected {
		t.Errorf("second sample %+v", h[1])
	}
	if h[2].PacketsPerSec != 5 || h[2].Drops["ring"] != 2 {
		t.Errorf("sample after a restart %+v", h[2])
	}
	report(30, 150, 1500, 2, 0)
	h, _ = r.History("s1", time.Time{})
	if len(h) != 3 || !h[0].Time.Equal(t0.Add(10*time.Second)) || !h[2].Time.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("ring did not keep the newest 3: %+v", h)
	}
	if h, _ := r.History("s1", t0.Add(25*time.Second)); len(h) != 1 {
		t.Errorf("since filter: %d samples", len(h))
	}
	if _, ok := r.History("nope", time.Time{}); ok {
		t.Error("unknown sensor has a history")
	}
}
