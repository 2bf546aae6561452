package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBoundParam(t *testing.T) {
	if v, n, sum := boundParam("short", 16); v != "short" || n != 0 || sum != "" {
		t.Errorf("short value changed: %q %d %q", v, n, sum)
	}
	long := strings.Repeat("x", 1000)
	full := sha256.Sum256([]byte(long))
	v, n, sum := boundParam(long, 16)
	if v != strings.Repeat("x", 16)+"…" || n != 1000 || sum != hex.EncodeToString(full[:8]) {
		t.Errorf("cut value %q len %d sha256 %q", v, n, sum)
	}
}

func TestDenyLimiter(t *testing.T) {
	l := newDenyLimiter(1, 3)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.take("10.0.0.1", now); !ok {
			t.Fatalf("denial %d within the burst limited", i)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.take("10.0.0.1", now); ok {
			t.Fatalf("denial %d past the burst allowed", i)
		}
	}
	if ok, _ := l.take("10.0.0.2", now); !ok {
		t.Errorf("another source shares the first one's bucket")
	}
	ok, suppressed := l.take("10.0.0.1", now.Add(time.Second))
	if !ok || suppressed != 5 {
		t.Errorf("after a second: allowed %v with %d suppressed, want true and 5", ok, suppressed)
	}
	// The map of sources stays bounded.
	for i := 0; i < 3*maxLimitedSources; i++ {
		l.take(fmt.Sprintf("10.1.%d.%d", i/256, i%256), now)
	}
	if n := len(l.srcs); n > maxLimitedSources+1 {
		t.Errorf("%d sources tracked, bound %d", n, maxLimitedSources)
	}
}

func TestAuditRotationKeepsN(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	m, _ := newMetrics(nil)
	cfg := DefaultAuditConfig()
	cfg.MaxBytes, cfg.Keep = 4096, 2
	a, err := openAudit(path, false, cfg, slog.New(slog.DiscardHandler), m)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 200; i++ {
		if err := a.Write(&AuditEntry{Endpoint: "pcap", Remote: "127.0.0.1:1", Error: strings.Repeat("e", 200)}); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := filepath.Glob(path + "*")
	if len(names) != 3 {
		t.Errorf("files %v, want the current one and 2 rotated", names)
	}
	for _, n := range names {
		st, _ := os.Stat(n)
		if st.Size() > cfg.MaxBytes {
			t.Errorf("%s: %d bytes, more than max_bytes %d", n, st.Size(), cfg.MaxBytes)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", n, st.Mode().Perm())
		}
	}
}
