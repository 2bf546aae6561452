package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
)

// startEdited starts the collector like collector.start, on fresh
// loopback ports (or the ones of a previous start), with its YAML
// configuration passed through edit first (to add settings the harness
// does not write). It waits until the API and metrics listen, or until
// the process exits; it returns the process either way.
func (c *collector) startEdited(edit func(cfg string) string, extraArgs ...string) *e2etest.Proc {
	t := c.t
	t.Helper()
	addr := func(a string) string {
		if a == "" {
			return "127.0.0.1:0"
		}
		return a
	}
	c.writeConfig(addr(c.ingest), addr(c.api), addr(c.mets))
	raw, err := os.ReadFile(c.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.configPath, []byte(edit(string(raw))), 0o600); err != nil {
		t.Fatal(err)
	}
	c.starts++
	args := append([]string{bin.collector, "--config", c.configPath, "--log-level", "info"}, extraArgs...)
	p := startProc(t, c.wrap(args...)...)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !p.Exited() {
		log := p.Log.String()
		if strings.Contains(log, `msg="api listening"`) && strings.Contains(log, `msg="metrics listening"`) {
			for _, m := range listenRE.FindAllStringSubmatch(log, -1) {
				switch m[1] {
				case "ingest":
					c.ingest = m[2]
				case "api":
					c.api = m[2]
				case "metrics":
					c.mets = m[2]
				}
			}
			c.proc = p
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// withAPI adds lines under the api: section of a collector configuration
// (indented by the caller), after audit_sync.
func withAPI(lines string) func(string) string {
	return func(cfg string) string {
		return strings.Replace(cfg, "  audit_sync: false\n", "  audit_sync: false\n"+lines, 1)
	}
}

// withPebble adds lines under store: pebble: (indented by the caller).
func withPebble(lines string) func(string) string {
	return func(cfg string) string {
		return strings.Replace(cfg, "store:\n", "store:\n  pebble:\n"+lines, 1)
	}
}

// mountTmpfs mounts a tmpfs of the given size (e.g. "8m") on a new
// directory and unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes zeros to path until the file system is full (or max bytes
// are written) and returns the bytes written.
func fill(t *testing.T, path string, max int64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for n < max {
		k, err := f.Write(buf[:min(int64(len(buf)), max-n)])
		n += int64(k)
		if err != nil {
			break
		}
	}
	return n
}
