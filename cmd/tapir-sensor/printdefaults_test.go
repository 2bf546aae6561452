package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/internal/configdoc"
	"github.com/tapir-sensor/tapir/sensor/config"
)

// TestPrintDefaults: tapir-sensor check-config --print-defaults prints
// the commented default configuration, which loads through the config
// loader as config.DefaultConfig() and passes check-config once a run gives
// its input and output.
func TestPrintDefaults(t *testing.T) {
	bin := buildSensor(t)
	out, err := exec.Command(bin, "check-config", "--print-defaults").Output()
	if err != nil {
		t.Fatalf("check-config --print-defaults: %v", err)
	}
	if !bytes.Equal(out, config.DefaultsYAML()) || !bytes.Contains(out, []byte("\n  # snap_len ")) {
		t.Fatalf("printed defaults are not the commented defaults file:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range configdoc.Differences(cfg, config.DefaultConfig()) {
		t.Errorf("printed defaults load with %s (config.DefaultConfig())", d)
	}
	check := exec.Command(bin, "check-config", "--config", path, "-r", "capture.pcap", "--flows-out", filepath.Join(t.TempDir(), "flows.json"))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("check-config on the printed defaults: %v\n%s", err, out)
	}
}
