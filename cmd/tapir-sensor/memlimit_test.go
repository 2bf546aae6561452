package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// restoreMemoryLimit puts back the test process's memory limit.
func restoreMemoryLimit(t *testing.T) {
	t.Helper()
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

// TestMemoryLimitApplied: a run sets the Go runtime's soft memory limit
// from memory_limit (the default when the file does not say, nothing when
// it says 0).
func TestMemoryLimitApplied(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: it wins over memory_limit")
	}
	restoreMemoryLimit(t)
	pcap := testenv.Pcap(t, "zeek/wikipedia.pcap")
	for _, tc := range []struct {
		yaml string
		want int64
	}{
		{"", 640 << 20},
		{"memory_limit: 104857600\n", 100 << 20},
		{"memory_limit: 0\n", math.MaxInt64},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		cfgPath := filepath.Join(t.TempDir(), "sensor.yaml")
		if err := os.WriteFile(cfgPath, []byte("sensor_id: t\n"+tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		flows := filepath.Join(t.TempDir(), "flows.json")
		if code := run([]string{"--config", cfgPath, "-r", pcap, "--flows-out", flows}, &out, &errb); code != 0 {
			t.Fatalf("%q: exit %d, %s", tc.yaml, code, errb.String())
		}
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%q: runtime memory limit %d, want %d", tc.yaml, got, tc.want)
		}
	}
}

// TestMemoryLimitBadValueRejected: a memory_limit too small to run in is a
// configuration error (exit 2) that names the key.
func TestMemoryLimitBadValueRejected(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(cfgPath, []byte("memory_limit: 1048576\noutput:\n  flows_out: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", cfgPath}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "memory_limit 1048576") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}

// TestGOMEMLIMITWinsOverConfig runs the real binary with GOMEMLIMIT set
// and memory_limit in its file: the environment's limit stays in force.
func TestGOMEMLIMITWinsOverConfig(t *testing.T) {
	bin := buildSensor(t)
	pcap := testenv.Pcap(t, "zeek/wikipedia.pcap")
	cfgPath := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(cfgPath, []byte("sensor_id: t\nmemory_limit: 104857600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env, want string
	}{
		{"", fmt.Sprintf("source=memory_limit bytes=%d", 100<<20)},
		{"300MiB", fmt.Sprintf("source=GOMEMLIMIT bytes=%d", 300<<20)},
	} {
		cmd := exec.Command(bin, "--config", cfgPath, "-r", pcap, "--flows-out", filepath.Join(t.TempDir(), "f.json"))
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+tc.env)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("GOMEMLIMIT=%q: %v\n%s", tc.env, err, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("GOMEMLIMIT=%q: stderr lacks %q:\n%s", tc.env, tc.want, errb.String())
		}
	}
}
