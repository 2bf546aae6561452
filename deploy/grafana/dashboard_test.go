package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var (
	metricRe  = regexp.MustCompile(`\btapir_[a-z0-9_]+`)
	literalRe = regexp.MustCompile(`"([a-z][a-z0-9_]*)"`)
)

// exported returns a predicate telling whether a metric name is exported
// by the Go sources: the whole name as a string literal, or a
// Namespace "tapir" + Subsystem + Name built from two literals of one
// file, or the sensor engine's "tapir_sensor_" + a literal of
// sensor/engine.
func exported(t *testing.T) func(string) bool {
	root := testenv.RepoRoot(t)
	whole := map[string]bool{}
	perFile := []map[string]bool{}
	engine := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".cache" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lits := map[string]bool{}
		for _, m := range literalRe.FindAllSubmatch(data, -1) {
			lits[string(m[1])] = true
			whole[string(m[1])] = true
		}
		perFile = append(perFile, lits)
		if filepath.Dir(p) == filepath.Join(root, "sensor", "engine") {
			for l := range lits {
				engine[l] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(name string) bool {
		if whole[name] {
			return true
		}
		if rest, ok := strings.CutPrefix(name, "tapir_sensor_"); ok && engine[rest] {
			return true
		}
		rest := strings.TrimPrefix(name, "tapir_")
		for i := range rest {
			if rest[i] != '_' {
				continue
			}
			sub, n := rest[:i], rest[i+1:]
			for _, lits := range perFile {
				if lits["tapir"] && lits[sub] && lits[n] {
					return true
				}
			}
		}
		return false
	}
}

func TestDashboardMetricsExist(t *testing.T) {
	data, err := os.ReadFile("tapir.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok {
			exprs = append(exprs, s)
		}
	}
	ok := exported(t)
	names := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricRe.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(m, suf); cut && strings.HasSuffix(base, "_seconds") {
					m = base
				}
			}
			names[m] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metrics referenced", len(names))
	}
	for n := range names {
		if !ok(n) {
			t.Errorf("dashboard queries %s, which no Go source exports", n)
		}
	}
	// The check itself must be able to fail.
	if ok("tapir_sensor_no_such_metric_total") || ok("tapir_store_no_such_total") {
		t.Error("the existence check accepts made-up names")
	}
	t.Logf("%d metrics referenced, all exported", len(names))
}
