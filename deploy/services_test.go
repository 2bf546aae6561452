// Package deploy holds tests of the wiring between the Makefile and the
// deployment scripts.
package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// servicePorts maps each port variable of the Makefile to the
// environment variable deploy/kafka/start.sh, deploy/hbase/start.sh or
// deploy/opensearch/start.sh reads it from.
var servicePorts = []struct{ makeVar, script, env string }{
	{"KAFKA_PORT", "deploy/kafka/start.sh", "TAPIR_KAFKA_PORT"},
	{"KAFKA_CONTROLLER_PORT", "deploy/kafka/start.sh", "TAPIR_KAFKA_CTRL_PORT"},
	{"HBASE_ZK_PORT", "deploy/hbase/start.sh", "TAPIR_HBASE_ZK_PORT"},
	{"HBASE_MASTER_PORT", "deploy/hbase/start.sh", "TAPIR_HBASE_MASTER_PORT"},
	{"HBASE_MASTER_INFO_PORT", "deploy/hbase/start.sh", "TAPIR_HBASE_INFO_PORT"},
	{"HBASE_RS_PORT", "deploy/hbase/start.sh", "TAPIR_HBASE_RS_PORT"},
	{"OPENSEARCH_PORT", "deploy/opensearch/start.sh", "TAPIR_OPENSEARCH_PORT"},
	{"OPENSEARCH_TRANSPORT_PORT", "deploy/opensearch/start.sh", "TAPIR_OPENSEARCH_TRANSPORT_PORT"},
}

// portEnv matches the port variables a script reads: ${TAPIR_..._PORT:-.
var portEnv = regexp.MustCompile(`\$\{(TAPIR_[A-Z_]*PORT):-`)

// TestServicePortsAreMakeVariables: every port variable the services'
// start scripts read is set from a Makefile variable, documented in the
// Makefile and in docs/testing.md (where the README sends whoever runs
// the tests), and reaches the script in both make
// services-up and the targets that start the services around the tests
// (checked with make -n and distinct port values).
func TestServicePortsAreMakeVariables(t *testing.T) {
	root := testenv.RepoRoot(t)
	testenv.Tool(t, "make")
	checkScriptsCovered(t, root)
	makefile := readFile(t, filepath.Join(root, "Makefile"))
	guide := readFile(t, filepath.Join(root, "docs", "testing.md"))
	args := []string{"-n", "-C", root}
	for i, p := range servicePorts {
		args = append(args, fmt.Sprintf("%s=%d", p.makeVar, 30001+i))
		if !regexp.MustCompile(`(?m)^# ` + p.makeVar + ` +\S`).MatchString(makefile) {
			t.Errorf("Makefile: %s not documented in a '# %s  what [default]' line", p.makeVar, p.makeVar)
		}
		if !strings.Contains(guide, "`"+p.makeVar+"`") {
			t.Errorf("docs/testing.md: %s not documented", p.makeVar)
		}
	}
	for _, target := range []string{"services-up", "test-race"} {
		out := dryRun(t, append(args, target))
		for i, p := range servicePorts {
			want := fmt.Sprintf("%s=%d", p.env, 30001+i)
			if !scriptGets(out, p.script, want) {
				t.Errorf("make %s %s=%d: %s not run with %s:\n%s", target, p.makeVar, 30001+i, p.script, want, out)
			}
		}
	}
}

// checkScriptsCovered fails for a port variable a start script reads
// that servicePorts (and so the Makefile) does not set.
func checkScriptsCovered(t *testing.T, root string) {
	t.Helper()
	for _, script := range []string{"deploy/kafka/start.sh", "deploy/hbase/start.sh", "deploy/opensearch/start.sh"} {
		for _, m := range portEnv.FindAllStringSubmatch(readFile(t, filepath.Join(root, script)), -1) {
			if !slices.ContainsFunc(servicePorts, func(p struct{ makeVar, script, env string }) bool {
				return p.script == script && p.env == m[1]
			}) {
				t.Errorf("%s reads %s, which no Makefile variable sets", script, m[1])
			}
		}
	}
}

// scriptGets reports whether a line of make's dry run runs script with
// env (VAR=value) set before it.
func scriptGets(out, script, env string) bool {
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "./"+script); i > 0 && slices.Contains(strings.Fields(line[:i]), env) {
			return true
		}
	}
	return false
}

func dryRun(t *testing.T, args []string) string {
	t.Helper()
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
