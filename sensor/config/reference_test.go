package config

import (
	"testing"

	"github.com/tapir-sensor/tapir/internal/configdoc"
)

// TestDefaultsYAMLLoadsAsDefault: the embedded defaults file (what
// check-config --print-defaults prints) loads through Load as DefaultConfig(),
// and documents its keys.
func TestDefaultsYAMLLoadsAsDefault(t *testing.T) {
	load := func(path string) (any, error) { return Load(path) }
	for _, p := range configdoc.CheckDefaults(DefaultsYAML(), t.TempDir(), load, DefaultConfig()) {
		t.Error(p)
	}
}
