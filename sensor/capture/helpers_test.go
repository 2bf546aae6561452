package capture

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireAll reports whether missing prerequisites must fail the test.
func requireAll() bool { return os.Getenv("TAPIR_REQUIRE_ALL") == "1" }

// skipOrFail skips the test with reason, or fails it under TAPIR_REQUIRE_ALL=1.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if requireAll() {
		t.Fatalf("TAPIR_REQUIRE_ALL=1: %s", reason)
	}
	t.Skip(reason)
}

// needTool returns the path of a tool, skipping when it is missing.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, name+" not installed")
	}
	return p
}

// pcapsDir locates the shared captures: $TAPIR_PCAPS, or ../shared/pcaps
// beside the repository root.
func pcapsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TAPIR_PCAPS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "..", "shared", "pcaps")
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if st, err := os.Stat(dir); dir == "" || err != nil || !st.IsDir() {
		skipOrFail(t, "shared pcaps not found (set TAPIR_PCAPS)")
	}
	return dir
}

// captureFiles lists every capture under the shared pcaps, recursively.
func captureFiles(t testing.TB) []string {
	t.Helper()
	root := pcapsDir(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(p) {
		case ".pcap", ".pcapng", ".gz", ".cap":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no captures under %s", root)
	}
	return files
}

// gunzipTemp writes the decompressed content of a .gz capture to a temp file.
func gunzipTemp(t testing.TB, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(path[:len(path)-len(".gz")]))
	cmd := exec.Command("sh", "-c", `gzip -dc "$1" > "$2"`, "sh", path, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gunzip %s: %v: %s", path, err, b)
	}
	return out
}
