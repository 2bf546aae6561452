package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/config"
)

// TestDeprecatedKeys: flows.snap_len and output.collector.drain_timeout
// are read as flows.store_bytes and output.collector.stop_ack_timeout,
// listed in Deprecated; setting both names of one key is an error; the
// example file uses none.
func TestDeprecatedKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := config.Load(write("old.yaml", "flows:\n  snap_len: 100\noutput:\n  collector:\n    drain_timeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine.Flows.SnapLen != 100 || c.Output.Collector.StopAckTimeout != 5*time.Second || len(c.Deprecated) != 2 {
		t.Fatalf("deprecated keys: store %d, stop wait %v, warnings %q", c.Engine.Flows.SnapLen, c.Output.Collector.StopAckTimeout, c.Deprecated)
	}
	c, err = config.Load(write("new.yaml", "flows:\n  store_bytes: 100\noutput:\n  collector:\n    stop_ack_timeout: 5s\n"))
	if err != nil || c.Engine.Flows.SnapLen != 100 || c.Output.Collector.StopAckTimeout != 5*time.Second || len(c.Deprecated) != 0 {
		t.Fatalf("new keys: %v, store %d, stop wait %v, warnings %q", err, c.Engine.Flows.SnapLen, c.Output.Collector.StopAckTimeout, c.Deprecated)
	}
	_, err = config.Load(write("both.yaml", "flows:\n  snap_len: 100\n  store_bytes: 200\n"))
	if err == nil || !strings.Contains(err.Error(), "flows.snap_len and flows.store_bytes are both set") {
		t.Fatalf("both names: %v", err)
	}
	c, err = config.Load(filepath.Join(testenv.RepoRoot(t), "deploy", "sensor.example.yaml"))
	if err != nil || len(c.Deprecated) != 0 {
		t.Fatalf("example: %v, deprecated keys %q", err, c.Deprecated)
	}
}
