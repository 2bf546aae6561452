// Package inspecttest holds the tshark oracle of Follow Stream shared by
// the tests of collector/inspect and collector/api.
package inspecttest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// separator ends tshark's follow output.
const separator = "===================================================================\n"

// Follow returns the body of `tshark -r path -q -z
// follow,PROTO,ascii,A,B` (proto "tcp" or "udp", A and B as tshark's
// Node lines write endpoints): the lines between "Node 1:" and the
// closing separator.
func Follow(t testing.TB, path, proto, a, b string) string {
	t.Helper()
	arg := "follow," + proto + ",ascii," + a + "," + b
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-q", "-z", arg).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", arg, err)
	}
	s := string(out)
	i := strings.Index(s, "\nNode 1: ")
	if i < 0 {
		t.Fatalf("no Node 1 line in tshark follow output:\n%s", s)
	}
	s = s[i+1:]
	s = s[strings.IndexByte(s, '\n')+1:]
	if !strings.HasSuffix(s, separator) {
		t.Fatalf("tshark follow output does not end with the separator:\n%s", s)
	}
	return strings.TrimSuffix(s, separator)
}
