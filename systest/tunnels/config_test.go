package tunnels

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// runConfigSensor reads path with tapir-sensor --config holding decode
// (a YAML decode section) and returns its final flow records.
func runConfigSensor(t *testing.T, path, decodeYAML string) []ecsFlow {
	t.Helper()
	dir := t.TempDir()
	out, cfg := filepath.Join(dir, "flows.json"), filepath.Join(dir, "sensor.yaml")
	yaml := "sensor_id: cfg\nflows:\n  idle_timeout: 87600h\n  active_timeout: 87600h\noutput:\n  flows_out: " + out + "\n" + decodeYAML
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if log, err := exec.CommandContext(ctx, sensor(t), "--config", cfg, "-r", path).CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor --config (%s) -r %s: %v: %s", decodeYAML, path, err, e2etest.LastLines(string(log), 5))
	}
	return readFlows(t, out)
}

// TestDecodeConfigDrivesTheDecoder: the sensor config's decode section
// is what the engine decodes with: depth 0 keeps flows on the tunnel's
// outer header, VXLAN ports without 4789 leave VXLAN to 4789 alone, a
// mirror entry for every source ("*") strips the mirror as --mirror.
func TestDecodeConfigDrivesTheDecoder(t *testing.T) {
	orig := testenv.Pcap(t, mirrorOriginal)
	want, _, _ := mirrorFlows(t, runSensor(t, orig, 0))
	path := filepath.Join(t.TempDir(), "vxlan.pcap")
	if _, _, err := encaptest.File(encaptest.VXLAN, orig, path); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, yaml string
		inner      bool
	}{
		{"defaults", "", true},
		{"depth 0", "decode:\n  tunnels:\n    depth: 0\n", false},
		{"other vxlan port", "decode:\n  tunnels:\n    vxlan_ports: [8472]\n", false},
		{"vxlan ports both", "decode:\n  tunnels:\n    vxlan_ports: [8472, 4789]\n", true},
	} {
		got, _, outer := mirrorFlows(t, runConfigSensor(t, path, c.yaml))
		// Taken apart: the inner flows, and on the tunnel only the frames
		// that are not IP (ARP). Not: every flow on the tunnel.
		if inner := len(got) > 0; inner != c.inner || outer == 0 {
			t.Errorf("%s: %d inner flows, %d on the tunnel, want inner %v", c.name, len(got), outer, c.inner)
		}
	}
	recs := runConfigSensor(t, path, "decode:\n  mirror:\n    - {interface: \"*\", encapsulation: vxlan}\n")
	got, _, outer := mirrorFlows(t, recs)
	if outer != 0 {
		t.Errorf("mirror \"*\": %d flows on the tunnel", outer)
	}
	diffFlows(t, got, want)
	checkMirrorLevels(t, recs, encaptest.VNI)
}
