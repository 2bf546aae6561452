package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/configdoc"
)

// TestDefaultsYAMLLoadsAsDefault: the embedded defaults file (what
// check-config --print-defaults prints) loads through Load as DefaultConfig(),
// and documents its keys.
func TestDefaultsYAMLLoadsAsDefault(t *testing.T) {
	raw := DefaultsYAML()
	comments := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "# ") {
			comments++
		}
	}
	if !bytes.HasPrefix(raw, []byte("# ")) || comments < 40 {
		t.Fatalf("defaults.yaml has too few comments:\n%s", raw)
	}
	path := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range configdoc.Differences(got, DefaultConfig()) {
		t.Errorf("defaults.yaml loads with %s (DefaultConfig()); run make docs", d)
	}
}
