package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestGeneratedFilesCurrent fails when docs/config-reference.md or a
// daemon's defaults.yaml differs from what the config structs, their
// defaults and their doc comments generate now.
func TestGeneratedFilesCurrent(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{ReferencePath, "sensor/config/defaults.yaml", "collector/config/defaults.yaml"} {
		want, ok := files[path]
		if !ok {
			t.Fatalf("%s not generated", path)
		}
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatalf("%v (run make docs)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: the config structs, defaults or doc comments changed; run make docs (go run ./internal/configdoc/gen) and commit the result", path)
		}
	}
}

// TestReferenceHasEveryDaemon: the reference documents both daemons and
// a key of each.
func TestReferenceHasEveryDaemon(t *testing.T) {
	files, err := generate(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := files[ReferencePath]
	for _, want := range []string{"## tapir-sensor", "## tapir-collector", "| `capture.snap_len` | int | `262144` |", "| `store.backend` | string | `pebble` |"} {
		if !bytes.Contains(ref, []byte(want)) {
			t.Errorf("reference lacks %q", want)
		}
	}
}
