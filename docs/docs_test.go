// Package docs holds tapir's guides. Its test checks that the Markdown
// documents' relative links reach a file (and a heading, for a #fragment)
// and that the make targets the README names exist.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceRE   = regexp.MustCompile("(?s)```.*?```")
	headingRE = regexp.MustCompile(`(?m)^#+ (.*)$`)
	makeRE    = regexp.MustCompile("(?m)(?:`|^)make ([a-z][a-z-]*)")
)

// documents are the Markdown files checked, relative to the repository
// root (globs).
var documents = []string{"README.md", "docs/*.md", "bench/*.md", "storage/README.md", "deploy/*/README.md"}

// TestRelativeLinksResolve: every relative link of the documents names an
// existing file, and a #fragment names a heading of its target.
func TestRelativeLinksResolve(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, pattern := range documents {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			checkLinks(t, root, f)
		}
	}
}

// checkLinks checks the relative links of one document.
func checkLinks(t *testing.T, root, doc string) {
	t.Helper()
	raw, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, doc)
	for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(raw), ""), -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		path, frag, _ := strings.Cut(target, "#")
		file := doc
		if path != "" {
			file = filepath.Join(filepath.Dir(doc), path)
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s: link %s: no such file", rel, target)
			continue
		}
		if frag != "" && strings.HasSuffix(file, ".md") && !hasAnchor(t, file, frag) {
			t.Errorf("%s: link %s: no such heading", rel, target)
		}
	}
}

// hasAnchor reports whether a Markdown file has a heading whose anchor
// (as GitHub makes it) is frag.
func hasAnchor(t *testing.T, file, frag string) bool {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(raw), ""), -1) {
		a := anchor(m[1])
		n := seen[a]
		seen[a]++
		if n > 0 {
			a += "-" + strconv.Itoa(n) // GitHub numbers repeated headings
		}
		if a == frag {
			return true
		}
	}
	return false
}

// anchor is GitHub's anchor of a heading: lower case, letters, digits,
// hyphens, underscores and spaces kept, spaces made hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestReadmeMakeTargetsExist: every `make TARGET` the README and the
// guides name is a target of the Makefile.
func TestReadmeMakeTargetsExist(t *testing.T) {
	root := testenv.RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"README.md", "docs/*.md"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range makeRE.FindAllStringSubmatch(string(raw), -1) {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).Match(makefile) {
					t.Errorf("%s names make %s: no such Makefile target", filepath.Base(f), m[1])
				}
			}
		}
	}
}
