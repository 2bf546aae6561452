package configdoc

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

type inner struct {
	Dir  string `yaml:"dir"`
	Size int
}

type item struct {
	Name string `yaml:"name"`
}

type toy struct {
	inner   `yaml:",inline"`
	Timeout time.Duration     `yaml:"timeout"`
	MaxRuns int               `yaml:"max_runs"`
	Sub     inner             `yaml:"sub"`
	Items   []item            `yaml:"items"`
	Tags    map[string]string `yaml:"tags"`
	Skipped []string          `yaml:"-"`
	hidden  int
}

var toyDocs = Docs{
	typeID(reflect.TypeFor[toy]()):   {"Timeout": "Timeout bounds\na run (MaxRuns: TLS, SubTotal).", "Sub": "Sub is a section."},
	typeID(reflect.TypeFor[inner]()): {"Dir": "Dir is where."},
	typeID(reflect.TypeFor[item]()):  {"Name": "Name names it."},
}

// TestFields: keys follow yaml tags (inline merged, "-" and unexported
// skipped, untagged lowercased), lists of mappings document their
// items' keys, and docs start with the key and name siblings by their
// keys (multi-word ones only: TLS stays TLS).
func TestFields(t *testing.T) {
	v := toy{inner: inner{Dir: "/d"}, Timeout: 90 * time.Second, Sub: inner{Size: 3}, hidden: 1}
	var got []string
	for _, f := range Fields(v, toyDocs) {
		got = append(got, f.Key+"|"+f.Type+"|"+f.Default+"|"+f.Doc)
	}
	want := []string{
		"dir|string|/d|dir is where.",
		"size|int|0|",
		"timeout|duration|1m30s|timeout bounds a run (max_runs: TLS, SubTotal).",
		"max_runs|int|0|",
		"sub|mapping||sub is a section.",
		"sub.dir|string|\"\"|dir is where.",
		"sub.size|int|3|",
		"items|list of mappings|[]|",
		"items[].name|string|\"\"|name names it.",
		"tags|map of string to string|{}|",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestYAMLLoadsBack: the commented YAML carries the docs and decodes to
// the value it was written from.
func TestYAMLLoadsBack(t *testing.T) {
	v := toy{inner: inner{Dir: "/d"}, Timeout: time.Minute, Items: []item{{Name: "a"}}, Tags: map[string]string{"k": "v"}}
	b, err := YAML(v, Fields(v, toyDocs), "header")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# header\n", "# timeout bounds a run (max_runs: TLS, SubTotal).\ntimeout: 1m0s\n", "  # dir is where.\n  dir:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("YAML lacks %q:\n%s", want, b)
		}
	}
	var got toy
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	v.hidden = got.hidden
	for _, d := range Differences(got, v) {
		t.Error(d)
	}
}

// TestSource reads the doc comments of this package's own Field type.
func TestSource(t *testing.T) {
	docs, err := Source(reflect.TypeFor[Field](), "github.com/tapir-sensor/tapir", testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := docs[typeID(reflect.TypeFor[Field]())]["Section"]; got != "Section is set for a mapping of further keys.\n" {
		t.Errorf("Field.Section doc %q", got)
	}
}

// TestDifferences: nil and empty containers are equal, values are not.
func TestDifferences(t *testing.T) {
	if d := Differences(toy{Items: []item{}}, toy{}); len(d) != 0 {
		t.Errorf("empty vs nil: %v", d)
	}
	if d := Differences(toy{hidden: 1}, toy{}); len(d) != 1 || !strings.Contains(d[0], ".hidden") {
		t.Errorf("unexported field: %v", d)
	}
}

// TestPrintDefaultsRequested recognises the flag only after check-config.
func TestPrintDefaultsRequested(t *testing.T) {
	for args, want := range map[string]bool{
		"check-config --print-defaults":      true,
		"check-config -print-defaults":       true,
		"check-config --config x":            false,
		"--print-defaults":                   false,
		"check-config --print-defaults=true": true,
	} {
		if got := PrintDefaultsRequested(strings.Fields(args)); got != want {
			t.Errorf("%q: %v", args, got)
		}
	}
}
