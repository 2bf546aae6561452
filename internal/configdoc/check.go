package configdoc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// minComments is how many comment lines a daemon's printed defaults must
// have at least: one per documented key, give or take.
const minComments = 40

// CheckDefaults reports what is wrong with a daemon's embedded defaults
// file raw (what check-config --print-defaults prints): too few comments,
// or it does not load through load (the daemon's config loader, given a
// file written under dir) as def (its DefaultConfig()). nil means it is
// right; the problems name `make docs`, which regenerates the file.
func CheckDefaults(raw []byte, dir string, load func(path string) (any, error), def any) []string {
	comments := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "# ") {
			comments++
		}
	}
	if !bytes.HasPrefix(raw, []byte("# ")) || comments < minComments {
		return []string{fmt.Sprintf("the defaults file has %d comment lines, want %d or more, starting the file; run make docs", comments, minComments)}
	}
	path := filepath.Join(dir, "defaults.yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return []string{err.Error()}
	}
	got, err := load(path)
	if err != nil {
		return []string{fmt.Sprintf("the defaults file does not load: %v; run make docs", err)}
	}
	var out []string
	for _, d := range Differences(got, def) {
		out = append(out, fmt.Sprintf("the defaults file loads with %s (DefaultConfig()); run make docs", d))
	}
	return out
}
