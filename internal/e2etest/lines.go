package e2etest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
)

// JSONLines decodes b, one JSON value a line (blank lines skipped), as
// tapir flows --json and the sensor's --flows-out write them.
func JSONLines[T any](t testing.TB, b []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("decode line %q: %v", line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// NoFlowsMatched reports whether a `tapir flows` run ended with err and
// stderr because its search matched nothing (exit 1 saying so, as grep
// does): an empty answer, not a failure.
func NoFlowsMatched(err error, stderr []byte) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == 1 && bytes.Contains(stderr, []byte("no flows matched"))
}
