package recordcodec_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyLegacyKnowsTheWire: the stored format must not follow the wire
// schema, so only legacy.go (the reader of values written before the
// format had a version) may import the wire package or the protobuf
// runtime that marshals it.
func TestOnlyLegacyKnowsTheWire(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	wire := []string{"github.com/tapir-sensor/tapir/proto/", "google.golang.org/protobuf/proto"}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "legacy.go" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, w := range wire {
				if strings.HasPrefix(path, w) {
					t.Errorf("%s imports %s: the stored format must not go through the wire schema", name, path)
				}
			}
		}
	}
}
