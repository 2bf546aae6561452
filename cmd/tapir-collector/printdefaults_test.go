package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/internal/configdoc"
)

// TestPrintDefaults: tapir-collector check-config --print-defaults
// prints the commented default configuration, which loads through the
// config loader as config.DefaultConfig() and passes check-config once TLS is
// given (here: turned off).
func TestPrintDefaults(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tapir-collector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "check-config", "--print-defaults").Output()
	if err != nil {
		t.Fatalf("check-config --print-defaults: %v", err)
	}
	if !bytes.Equal(out, config.DefaultsYAML()) || !bytes.Contains(out, []byte("\n  # backend ")) {
		t.Fatalf("printed defaults are not the commented defaults file:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "collector.yaml")
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
	plain := bytes.ReplaceAll(out, []byte("    insecure: false"), []byte("    insecure: true"))
	if err := os.WriteFile(path, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(bin, "check-config", "--config", path, "--data-dir", t.TempDir())
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("check-config on the printed defaults (TLS off): %v\n%s", err, out)
	}
}
