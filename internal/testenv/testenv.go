// Package testenv locates the shared real captures for tests and decides
// whether a test that lacks a tool, a privilege or the data may skip.
//
// `make test` sets TAPIR_REQUIRE_ALL=1: then a missing prerequisite fails
// the test instead of skipping it, so CI never passes on skipped tests.
package testenv

import (
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
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

// Captures lists every capture file (.pcap, .pcapng, .pcap.gz) under the
// shared captures folder, sorted.
func Captures(t testing.TB) []string {
	t.Helper()
	root := Pcaps(t)
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if !d.IsDir() && (strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") || strings.HasSuffix(n, ".pcap.gz")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	if len(out) == 0 {
		SkipOrFail(t, "no captures under "+root)
	}
	return out
}

// Rel returns a capture's path relative to the shared captures folder,
// for test names.
func Rel(t testing.TB, path string) string {
	r, err := filepath.Rel(Pcaps(t), path)
	if err != nil {
		return path
	}
	return r
}

// Plain returns a path to the capture uncompressed: the path itself, or
// for .gz a copy gunzipped into the test's temporary directory.
func Plain(t testing.TB, path string) string {
	t.Helper()
	if !strings.HasSuffix(path, ".gz") {
		return path
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(path), ".gz"))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, zr); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TsharkReadable reports whether tshark can read the file (some pcapng
// conformance files are unreadable on purpose).
func TsharkReadable(t testing.TB, path string) bool {
	t.Helper()
	return exec.Command(Tool(t, "tshark"), "-r", path, "-c", "1").Run() == nil
}
