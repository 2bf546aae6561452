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

func TestDefaultsValidateWithAnOutput(t *testing.T) {
	c := config.DefaultConfig()
	if err := c.Validate(false); err == nil || !strings.Contains(err.Error(), "no output") {
		t.Fatalf("defaults without an output: %v", err)
	}
	c.Output.FlowsOut = "-"
	if err := c.Validate(false); err != nil {
		t.Fatal(err)
	}
	c.Capture.Interfaces = []string{"eth0"}
	if err := c.Validate(true); err != nil {
		t.Fatal(err)
	}
}

func TestExampleFileValidates(t *testing.T) {
	c, err := config.Load(filepath.Join(testenv.RepoRoot(t), "deploy", "sensor.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(true); err != nil {
		t.Fatal(err)
	}
	if c.Engine.SensorID != "tap-01" || c.Capture.Workers != 2 || c.Output.Collector.Spool.Dir != "/var/lib/tapir/spool" {
		t.Fatalf("example not read: %+v", c)
	}
}

func TestConfigErrorsSayWhat(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":     {"sensor_id: a\nbogus: 1\n", "field bogus not found"},
		"misspelt flows":  {"flows:\n  idle_timeut: 5s\n", "idle_timeut"},
		"bad duration":    {"flows:\n  idle_timeout: soon\n", "line 2: cannot unmarshal"},
		"no tls":          {"output:\n  collector:\n    collectors: [c:1]\n", "tls"},
		"bad block size":  {"capture:\n  interfaces: [eth0]\n  block_size: 1000\n", "block"},
		"negative budget": {"flows:\n  budget_bytes: -1\noutput:\n  flows_out: x\n", "budget_bytes"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(p)
		if err == nil {
			err = c.Validate(strings.Contains(tc.yaml, "interfaces"))
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, tc.want)
		}
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

// TestIPFIXOutput: output.ipfix alone is an output, and its values are
// validated.
func TestIPFIXOutput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(p, []byte("sensor_id: s1\noutput:\n  ipfix:\n    collector: \"127.0.0.1:4739\"\n    template_refresh: 10s\n    observation_domain: 7\n    mtu: 1200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatalf("ipfix-only config: %v", err)
	}
	if x := cfg.Output.IPFIX; x.MTU != 1200 || x.ObservationDomain != 7 || x.TemplateRefresh != 10*time.Second || x.TemplateRefreshMessages != 50 {
		t.Errorf("loaded %+v", x)
	}
	cfg.Output.IPFIX.MTU = 10
	if cfg.Validate(false) == nil {
		t.Error("mtu 10 accepted")
	}
}

// TestMemoryLimit: memory_limit defaults to 640 MiB, is read from the
// file, may be 0 (no limit) and is refused below 64 MiB or negative.
func TestMemoryLimit(t *testing.T) {
	if d := config.DefaultConfig(); d.MemoryLimit != config.DefaultMemoryLimit || config.DefaultMemoryLimit != 640<<20 {
		t.Fatalf("default memory_limit %d", d.MemoryLimit)
	}
	for _, tc := range []struct {
		yaml string
		want int64
		ok   bool
	}{
		{"memory_limit: 1073741824\n", 1 << 30, true},
		{"memory_limit: 0\n", 0, true},
		{"memory_limit: 67108864\n", 64 << 20, true},
		{"memory_limit: 67108863\n", 64<<20 - 1, false},
		{"memory_limit: -1\n", -1, false},
	} {
		path := filepath.Join(t.TempDir(), "s.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml+"output:\n  flows_out: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if c.MemoryLimit != tc.want {
			t.Errorf("%q: read %d", tc.yaml, c.MemoryLimit)
		}
		err = c.Validate(false)
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "memory_limit")) {
			t.Errorf("%q: validate: %v", tc.yaml, err)
		}
	}
}
