package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
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

// breakAudit makes the next audit writes fail: the file descriptor is
// swapped for a read-only one.
func breakAudit(t *testing.T, a *auditLog) {
	t.Helper()
	f, err := os.Open(a.path)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.f.Close()
	a.f = f
	a.mu.Unlock()
}

// TestAuditFailClosed checks that after an audit write fails, pcap
// retrieval is refused 503 audit_unavailable while the file cannot be
// reopened and written, served again (with an entry recording the
// failure) once it can, and served throughout with audit.fail_open.
func TestAuditFailClosed(t *testing.T) {
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1"}, nil)
	path := "/api/v1/pcap?flow=" + url.QueryEscape(c.flows[0].rec.CommunityID)
	if resp, body := ts.get(t, tokAlice, path); resp.StatusCode != 200 {
		t.Fatalf("healthy audit: %d %s", resp.StatusCode, body)
	}
	breakAudit(t, ts.audit)
	ts.get(t, tokAlice, path) // served (the log looked fine); its entry fails
	// The file cannot be reopened: a directory stands in its place.
	if err := os.Rename(ts.auditPath, ts.auditPath+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ts.auditPath, 0o700); err != nil {
		t.Fatal(err)
	}
	resp, body := ts.get(t, tokAlice, path)
	if code, _ := errorCode(t, body); resp.StatusCode != 503 || code != "audit_unavailable" {
		t.Errorf("broken audit log: %d %s, want 503 audit_unavailable", resp.StatusCode, body)
	}
	if got := counterValue(t, ts.m.auditRefused); got != 1 {
		t.Errorf("tapir_api_audit_unavailable_refusals_total %v, want 1", got)
	}
	os.Remove(ts.auditPath)
	if resp, body := ts.get(t, tokAlice, path); resp.StatusCode != 200 {
		t.Fatalf("after the audit file is writable again: %d %s", resp.StatusCode, body)
	}
	entries := readAudit(t, ts.auditPath)
	if len(entries) != 2 || entries[0].Endpoint != "audit" || !strings.Contains(entries[0].Error, "failed write") || entries[1].Status != 200 {
		t.Errorf("entries after recovery: %+v; want the recovery marker, then the served pcap", entries)
	}

	_, open, _ := setup(t, "zeek/get.pcap", []string{"s1"}, func(cfg *Config) { cfg.Audit.FailOpen = true })
	breakAudit(t, open.audit)
	open.get(t, tokAlice, path)
	if err := os.Rename(open.auditPath, open.auditPath+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(open.auditPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if resp, body := open.get(t, tokAlice, path); resp.StatusCode != 200 {
		t.Errorf("fail_open: %d %s, want the pcap served", resp.StatusCode, body)
	}
}
