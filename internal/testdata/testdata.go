// Package testdata locates the shared real captures for tests and decides
// whether a test that lacks a tool, a privilege or the data may skip.
//
// `make test` sets TAPIR_REQUIRE_ALL=1: then a missing prerequisite fails
// the test instead of skipping it, so CI never passes on skipped tests.
package testdata

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireAll reports whether missing prerequisites must fail tests.
func RequireAll() bool { return os.Getenv("TAPIR_REQUIRE_ALL") == "1" }

// SkipOrFail skips the test with the reason, or fails it under RequireAll.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("prerequisite missing (TAPIR_REQUIRE_ALL=1): %s", reason)
	}
	t.Skip(reason)
}

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Pcaps returns the shared captures folder: $TAPIR_PCAPS, or ../shared/pcaps
// beside the repository.
func Pcaps(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TAPIR_PCAPS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "pcaps")
	}
	if _, err := os.Stat(dir); err != nil {
		SkipOrFail(t, "shared captures not found at "+dir+" (set TAPIR_PCAPS)")
	}
	return dir
}

// Pcap returns the path of one shared capture, relative to the pcaps folder.
func Pcap(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Pcaps(t), rel)
	if _, err := os.Stat(p); err != nil {
		SkipOrFail(t, "capture missing: "+p)
	}
	return p
}

// Tool returns the path of an external tool, skipping or failing when it
// is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, name+" not installed (make deps installs it)")
	}
	return p
}

// Root skips or fails unless the test runs as root.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root")
	}
}
