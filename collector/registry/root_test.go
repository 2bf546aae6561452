package registry

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Sensors(); len(got) != 0 {
		t.Fatalf("new registry has %d sensors", len(got))
	}
	b := r.Connect(Info{ID: "b", Hostname: "hb", Interfaces: []Interface{{Name: "eth0", LinkType: 1, Snaplen: 65535}}}, "10.0.0.2:1", 7)
	a := r.Connect(Info{ID: "a", Hostname: "ha"}, "10.0.0.1:1", 0)
	a.Batch(3, 2, 100, true, 1)
	a.Batch(3, 2, 100, false, 1) // duplicate: not counted as stored
	a.Stats(time.Unix(10, 0), map[string]uint64{"kernel_drops": 5})
	a.Stats(time.Unix(5, 0), map[string]uint64{"kernel_drops": 1}) // older: ignored
	a.Rejected(errors.New("bad record"))
	a.StoreError(errors.New("disk full"))
	b.Close()
	b.Close() // idempotent

	got := r.Sensors()
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("sensors not sorted by id: %+v", got)
	}
	sa, sb := got[0], got[1]
	if !sa.Connected || sa.Streams != 1 || sa.RemoteAddr != "10.0.0.1:1" {
		t.Errorf("a connection state: %+v", sa)
	}
	if sa.Batches != 2 || sa.Duplicates != 1 || sa.Flows != 3 || sa.Blocks != 2 || sa.Bytes != 100 || sa.Rejected != 1 || sa.StoreErrors != 1 {
		t.Errorf("a counters: %+v", sa)
	}
	if sa.Stats["kernel_drops"] != 5 || sa.DurableSeq != 1 || sa.LastError != "disk full" {
		t.Errorf("a stats: %+v", sa)
	}
	if sb.Connected || sb.Streams != 0 || sb.DurableSeq != 7 || len(sb.Interfaces) != 1 {
		t.Errorf("b after close: %+v", sb)
	}
	// Snapshots are copies.
	sa.Stats["kernel_drops"] = 99
	if s, _ := r.Sensor("a"); s.Stats["kernel_drops"] != 5 {
		t.Error("snapshot aliases registry state")
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got2 := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetName() + "=" + l.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got2[k] = v
		}
	}
	for k, v := range map[string]float64{
		"tapir_collector_sensor_connected,sensor=a":                 1,
		"tapir_collector_sensor_connected,sensor=b":                 0,
		"tapir_collector_sensor_flows_total,sensor=a":               3,
		"tapir_collector_sensor_duplicate_batches_total,sensor=a":   1,
		"tapir_collector_sensor_durable_seq,sensor=b":               7,
		"tapir_collector_sensor_stat,counter=kernel_drops,sensor=a": 5,
	} {
		if g, ok := got2[k]; !ok || g != v {
			t.Errorf("metric %s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestReconnectOverlap(t *testing.T) {
	r, _ := New(nil)
	old := r.Connect(Info{ID: "s"}, "a:1", 0)
	cur := r.Connect(Info{ID: "s"}, "a:2", 0)
	old.Close() // the stale stream times out after the new one opened
	s, _ := r.Sensor("s")
	if !s.Connected || s.RemoteAddr != "a:2" {
		t.Fatalf("sensor should stay connected via its new stream: %+v", s)
	}
	cur.Close()
	if s, _ := r.Sensor("s"); s.Connected {
		t.Fatal("sensor still connected after all streams closed")
	}
}

func TestConcurrent(t *testing.T) {
	r, _ := New(prometheus.NewRegistry())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := r.Connect(Info{ID: string(rune('a' + i%3))}, "x", 0)
			for j := range 100 {
				x.Batch(1, 1, 10, true, uint64(j))
				_ = r.Sensors()
			}
			x.Close()
		}()
	}
	wg.Wait()
	var batches uint64
	for _, s := range r.Sensors() {
		batches += s.Batches
		if s.Connected {
			t.Errorf("%s still connected", s.ID)
		}
	}
	if batches != 800 {
		t.Fatalf("batches = %d, want 800", batches)
	}
}

// TestEpochDurableSeq: the durable seq shown is the latest stream's
// epoch's: a reinstalled sensor (new epoch) starts again from its own,
// and a stale stream of the old epoch does not raise it.
func TestEpochDurableSeq(t *testing.T) {
	r, _ := New(nil)
	old := r.Connect(Info{ID: "s", Epoch: 1}, "a:1", 40)
	old.Batch(1, 1, 10, true, 41)
	cur := r.Connect(Info{ID: "s", Epoch: 2}, "b:1", 0)
	if s, _ := r.Sensor("s"); s.Epoch != 2 || s.DurableSeq != 0 {
		t.Fatalf("after a new epoch: epoch %d durable %d; want 2 0", s.Epoch, s.DurableSeq)
	}
	old.Batch(1, 1, 10, true, 42)
	cur.Batch(1, 1, 10, true, 1)
	if s, _ := r.Sensor("s"); s.DurableSeq != 1 {
		t.Fatalf("durable seq %d, want 1 (the old epoch's 42 leaked in)", s.DurableSeq)
	}
	old.Close()
	cur.Close()
}
