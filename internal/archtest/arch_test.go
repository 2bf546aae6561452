package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// module is the module path every rule is relative to.
const module = "github.com/tapir-sensor/tapir"

// rule forbids the packages under From (module-relative, a directory
// prefix) to depend on any package under one of Forbid, test files
// included.
type rule struct {
	From   string
	Forbid []string
}

// rules are the boundaries of issue 15.
var rules = []rule{
	{From: "sensor", Forbid: []string{"collector", "storage"}},
	{From: "collector", Forbid: []string{"sensor", "bpf"}},
	{From: "storage", Forbid: []string{"collector"}},
	{From: "flow", Forbid: []string{"sensor", "collector", "storage"}},
	// The rest of the shared core serves both sides and depends on neither.
	{From: "segfile", Forbid: []string{"sensor", "collector", "storage", "block"}},
	{From: "block", Forbid: []string{"sensor", "collector", "storage"}},
	{From: "decode", Forbid: []string{"sensor", "collector", "storage"}},
	{From: "pcapio", Forbid: []string{"sensor", "collector", "storage"}},
	// The binaries under cmd/ keep their side's boundary.
	{From: "cmd/tapir-sensor", Forbid: []string{"collector", "storage"}},
	{From: "cmd/tapir-collector", Forbid: []string{"sensor", "bpf"}},
	{From: "cmd/tapir", Forbid: []string{"sensor", "bpf"}},
}

// sensorBinary must not link a store or a Kafka client.
const sensorBinary = "./cmd/tapir-sensor"

// sensorBinaryForbidden are the module path prefixes of the stores'
// and Kafka's client libraries.
var sensorBinaryForbidden = []string{
	"github.com/cockroachdb/pebble",
	"github.com/tsuna/gohbase",
	"github.com/twmb/franz-go",
	"github.com/IBM/sarama",
	"github.com/segmentio/kafka-go",
}

// known are edges that break a rule today, each with the reason it is
// tolerated; the key is "importer -> forbidden package" (module-relative,
// without test variants). Remove an entry once its edge is gone: the test
// fails on an entry that no longer matches anything, so the list only
// shrinks.
var known = map[string]string{}

// pkg is the part of go list -json output the test reads.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	ForTest    string
}

// TestBoundaries fails on every forbidden dependency in the module, test
// files included, naming the importer, the forbidden package and the
// direct import that brings it in.
func TestBoundaries(t *testing.T) {
	pkgs := goList(t, "-deps", "-test", "./...")
	graph := map[string][]string{}
	for _, p := range pkgs {
		graph[p.ImportPath] = p.Imports
	}
	seen := map[string]bool{}
	var bad []string
	for _, p := range pkgs {
		for _, v := range violations(graph, p) {
			if _, ok := known[v.key()]; ok {
				seen[v.key()] = true
				continue
			}
			bad = append(bad, v.String())
		}
	}
	for _, b := range dedup(bad) {
		t.Error(b)
	}
	for k := range known {
		if !seen[k] {
			t.Errorf("known violation %q no longer occurs: remove it from known", k)
		}
	}
}

// TestSensorBinaryDeps fails when the sensor binary links a store or a
// Kafka client library.
func TestSensorBinaryDeps(t *testing.T) {
	pkgs := goList(t, "-deps", sensorBinary)
	for _, p := range pkgs {
		for _, f := range sensorBinaryForbidden {
			if under(p.ImportPath, f) {
				t.Errorf("%s depends on %s (no store or Kafka client in the sensor)", sensorBinary, p.ImportPath)
			}
		}
	}
}

// violation is one forbidden dependency of one package.
type violation struct {
	importer, forbidden, chain string
	test                       bool // in a test variant: test files
	r                          rule
}

func (v violation) key() string { return v.importer + " -> " + v.forbidden }

func (v violation) String() string {
	who := v.importer
	if v.test {
		who += " (with its tests)"
	}
	return fmt.Sprintf("%s depends on %s: %s -> %s; %s/ must not depend on %s/",
		who, v.forbidden, v.importer, v.chain, v.r.From, strings.Join(v.r.Forbid, "/ or "))
}

// violations lists the forbidden dependencies of p.
func violations(graph map[string][]string, p pkg) []violation {
	if strings.HasSuffix(p.ImportPath, ".test") {
		return nil // a generated test main
	}
	from, ok := rel(p.ImportPath)
	if !ok {
		return nil
	}
	from = strings.TrimSuffix(from, "_test") // an external test package
	var out []violation
	for _, r := range rules {
		if !under(from, r.From) {
			continue
		}
		for _, d := range p.Deps {
			dr, ok := rel(d)
			if !ok || !slices.ContainsFunc(r.Forbid, func(f string) bool { return under(dr, f) }) {
				continue
			}
			out = append(out, violation{importer: from, test: p.ForTest != "",
				forbidden: dr, chain: chain(graph, p, d), r: r})
		}
	}
	return out
}

// chain returns the import path from p to dep, module-relative, as
// "a -> b -> dep" (shortest, breadth first over graph).
func chain(graph map[string][]string, p pkg, dep string) string {
	prev := map[string]string{p.ImportPath: ""}
	queue := []string{p.ImportPath}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == dep {
			break
		}
		for _, next := range graph[cur] {
			if _, ok := prev[next]; !ok {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	if _, ok := prev[dep]; !ok {
		return relOrSelf(dep)
	}
	var path []string
	for cur := dep; cur != p.ImportPath; cur = prev[cur] {
		path = append(path, relOrSelf(cur))
	}
	slices.Reverse(path)
	return strings.Join(path, " -> ")
}

// rel returns the module-relative path of a module package, without its
// test variant suffix.
func rel(path string) (string, bool) {
	path = variant(path)
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func relOrSelf(path string) string {
	if r, ok := rel(path); ok {
		return r
	}
	return variant(path)
}

// variant strips a test variant suffix ("p [q.test]").
func variant(path string) string {
	p, _, _ := strings.Cut(path, " ")
	return p
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func dedup(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// goList runs go list -json with args in the repository root.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Imports,Deps,ForTest"}, args...)...)
	cmd.Dir = testenv.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v: %s", args, err, stderr.Bytes())
	}
	pkgs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed no packages")
	}
	return pkgs
}

// decode reads go list's stream of JSON objects.
func decode(b []byte) ([]pkg, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []pkg
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		out = append(out, p)
	}
}
