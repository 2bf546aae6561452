package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/registry"
)

// TestSensorHistoryAPI: the history of a sensor the registry sampled,
// within the minutes asked; 404 for an unknown sensor; 400 for bad
// minutes; flows:read suffices.
func TestSensorHistoryAPI(t *testing.T) {
	reg, err := registry.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sess := reg.Connect(registry.Info{ID: "s1"}, "10.0.0.1:1", 0)
	for i := 0; i <= 12; i++ { // 2 minutes of reports, 10 s apart
		ts := now.Add(-2 * time.Minute).Add(time.Duration(i) * 10 * time.Second)
		n := uint64(i)
		sess.Stats(ts, map[string]uint64{"packets": 1000 * n, "wire_bytes": 1e6 * n, "kernel_drops": 3 * n,
			"budget_cut_packets": n, "spool_bytes": 4096})
	}
	srv := startServerDeps(t, Dependencies{Store: openStore(t), Sensors: reg, Now: func() time.Time { return now }}, nil)
	var all []registry.Sample
	getJSON(t, srv, tokBob, "/api/v1/sensors/s1/history", &all)
	if len(all) != 13 {
		t.Fatalf("%d samples, want 13", len(all))
	}
	last := all[len(all)-1]
	if last.PacketsPerSec != 100 || last.BytesPerSec != 1e5 || last.Drops["ring"] != 3 || last.Drops["budget"] != 1 ||
		last.SpoolBytes != 4096 || !last.Connected || last.LastSeen.IsZero() {
		t.Errorf("last sample %+v", last)
	}
	var recent []registry.Sample
	getJSON(t, srv, tokBob, "/api/v1/sensors/s1/history?minutes=1", &recent)
	if len(recent) != 7 || !recent[0].Time.Equal(now.Add(-time.Minute)) {
		t.Errorf("last minute: %d samples from %v", len(recent), recent)
	}
	if resp, _ := srv.get(t, tokBob, "/api/v1/sensors/nope/history"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown sensor: %d", resp.StatusCode)
	}
	for _, m := range []string{"0", "x", "1441"} {
		if resp, _ := srv.get(t, tokBob, "/api/v1/sensors/s1/history?minutes="+m); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("minutes=%s: %d", m, resp.StatusCode)
		}
	}
	if resp, _ := srv.get(t, "", "/api/v1/sensors/s1/history"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}
