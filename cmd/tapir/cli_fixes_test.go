package main

import (
	"crypto/x509"
	"encoding/csv"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/collector/api"
)

// TestFlowsWindowAndNoMatch: `tapir flows` says on stderr which window it
// searched; when the default last hour misses the stored flows it hints
// at --from and exits 1 (like grep), with nothing on stdout; a window
// around the flows exits 0; a query with its own after/before is sent
// as is.
func TestFlowsWindowAndNoMatch(t *testing.T) {
	c := startCollector(t, "zeek/get.pcap")
	code, so, se := execTapir(t, c.env(), "flows")
	if code != 1 || so != "" || !strings.Contains(se, "searched ") || !strings.Contains(se, "(default: the last hour; --from/--to)") ||
		!strings.Contains(se, "no flows matched") || !strings.Contains(se, "--from") {
		t.Errorf("default window over old flows: exit %d, stdout %q, stderr %s", code, so, se)
	}
	w := c.window()
	code, so, se = execTapir(t, c.env(), append([]string{"flows", "--output", "table"}, w...)...)
	if code != 0 || !strings.Contains(se, "searched "+w[1]+" – "+w[3]) || !strings.Contains(so, c.ins[0].ID.String()) {
		t.Errorf("window %v: exit %d, stderr %s\n%s", w, code, se, so)
	}
	code, so, se = execTapir(t, c.env(), "flows", "--query", "tcp and after "+w[1]+" and before "+w[3])
	if code != 0 || !strings.Contains(se, "query's after/before") || strings.Count(so, "\n") != 1 {
		t.Errorf("query with its own window: exit %d, stderr %s\n%s", code, se, so)
	}
}

// TestFlowsOutputs: --output table has flow ID, duration and service
// columns; --output csv is one parseable row per flow with raw numbers;
// --top N --by bytes --group destination.ip ranks destinations as the
// records add up.
func TestFlowsOutputs(t *testing.T) {
	c := startCollector(t, "zeek/wikipedia.pcap")
	w := c.window()
	code, so, se := execTapir(t, c.env(), append([]string{"flows", "--output", "table"}, w...)...)
	lines := strings.Split(strings.TrimRight(so, "\n"), "\n")
	if code != 0 || len(lines) != len(c.ins)+1 {
		t.Fatalf("table: exit %d, %d lines for %d flows: %s", code, len(lines), len(c.ins), se)
	}
	for _, col := range []string{"FLOW ID", "DURATION", "SERVICE", "COMMUNITY ID"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("table header %q has no %s", lines[0], col)
		}
	}
	code, so, se = execTapir(t, c.env(), append([]string{"flows", "--output", "csv"}, w...)...)
	rows, err := csv.NewReader(strings.NewReader(so)).ReadAll()
	if code != 0 || err != nil || len(rows) != len(c.ins)+1 {
		t.Fatalf("csv: exit %d, %v, %d rows for %d flows: %s", code, err, len(rows), len(c.ins), se)
	}
	hdr := rows[0]
	idCol, durCol, bytesCol := slices.Index(hdr, "FLOW ID"), slices.Index(hdr, "DURATION"), slices.Index(hdr, "BYTES")
	var ids []string
	for _, r := range rows[1:] {
		ids = append(ids, r[idCol])
		if _, err := strconv.ParseFloat(r[durCol], 64); err != nil {
			t.Errorf("csv duration %q", r[durCol])
		}
		if _, err := strconv.ParseUint(r[bytesCol], 10, 64); err != nil {
			t.Errorf("csv bytes %q", r[bytesCol])
		}
	}
	var want []string
	sums := map[string]uint64{}
	for _, in := range c.ins {
		want = append(want, in.ID.String())
		e := in.Record.ToECS()
		sums[e.Destination.IP] += e.Network.Bytes
	}
	sort.Strings(ids)
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Errorf("csv flow IDs %v, want %v", ids, want)
	}

	code, so, se = execTapir(t, c.env(), append([]string{"flows", "--top", "3", "--by", "bytes", "--group", "destination.ip", "--output", "csv"}, w...)...)
	rows, err = csv.NewReader(strings.NewReader(so)).ReadAll()
	if code != 0 || err != nil || len(rows) != 4 || !slices.Equal(rows[0], []string{"destination.ip", "flows", "packets", "bytes"}) {
		t.Fatalf("top: exit %d, %v, %q: %s", code, err, rows, se)
	}
	type kv struct {
		ip string
		b  uint64
	}
	var ranked []kv
	for ip, b := range sums {
		ranked = append(ranked, kv{ip, b})
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].b != ranked[j].b {
			return ranked[i].b > ranked[j].b
		}
		return ranked[i].ip < ranked[j].ip
	})
	for i, r := range rows[1:] {
		if r[0] != ranked[i].ip || r[3] != strconv.FormatUint(ranked[i].b, 10) {
			t.Errorf("top row %d: %v, want %s with %d bytes", i, r, ranked[i].ip, ranked[i].b)
		}
	}
}

// TestTokenCreate: `tapir token create` prints a fresh token once on
// stdout and appends its hashed entry to the tokens file, which the
// collector's loader accepts and which maps the token to the name and
// roles given; an unknown role exits 2 and leaves the file as it was.
func TestTokenCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	var toks []string
	for _, name := range []string{"alice", "bob"} {
		code, so, se := execTapir(t, nil, "token", "create", "--name", name, "--role", "pcap:read,flows:read", "--tokens-file", file)
		if code != 0 || strings.Count(so, "\n") != 1 {
			t.Fatalf("token create %s: exit %d, stdout %q, stderr %s", name, code, so, se)
		}
		toks = append(toks, strings.TrimSpace(so))
	}
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 || strings.Contains(string(before), toks[0]) {
		t.Errorf("tokens file mode %v, or it holds the token in clear:\n%s", st.Mode().Perm(), before)
	}
	tokens, err := api.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"alice", "bob"} {
		e, ok := tokens.Lookup(toks[i])
		if !ok || e.Subject != name || !slices.Equal(e.Roles, []string{"pcap:read", "flows:read"}) {
			t.Errorf("token of %s: %v %+v", name, ok, e)
		}
	}
	if toks[0] == toks[1] {
		t.Error("two tokens are equal")
	}
	if code, _, se := execTapir(t, nil, "token", "create", "--name", "carol", "--role", "viewer", "--tokens-file", file); code != 2 || !strings.Contains(se, "flows:read") {
		t.Errorf("unknown role: exit %d, %s", code, se)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("a refused token changed the tokens file")
	}
}

// TestCertsClientDefaultRole: `tapir certs client USER` without -role
// issues a certificate whose role is one the collector's API knows
// (flows:read); an unknown role is a usage error.
func TestCertsClientDefaultRole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	for _, args := range [][]string{{"certs", "init", "-dir", dir}, {"certs", "client", "-dir", dir, "alice"}} {
		if code, _, se := execTapir(t, nil, args...); code != 0 {
			t.Fatalf("tapir %s: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "client-alice.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		t.Fatal("client-alice.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if ou := cert.Subject.OrganizationalUnit; len(ou) != 1 || ou[0] != string(api.RoleFlowsRead) {
		t.Errorf("default role %v, want [%s]", ou, api.RoleFlowsRead)
	}
	if code, _, se := execTapir(t, nil, "certs", "client", "-dir", dir, "-role", "viewer", "bob"); code != 2 || !strings.Contains(se, "flows:read") {
		t.Errorf("-role viewer: exit %d, %s", code, se)
	}
	if code, _, se := execTapir(t, nil, "certs", "client", "-dir", dir, "-role", "pcap:read", "carol"); code != 0 {
		t.Errorf("-role pcap:read: exit %d, %s", code, se)
	}
}

// TestSensorsOutput: `tapir sensors --output csv` writes a header and
// one parseable row per sensor; --output json the registry; a bad format
// is a usage error.
func TestSensorsOutput(t *testing.T) {
	srv, _ := fakeAPI(t, nil)
	env := []string{"TAPIR_SERVER=" + srv.URL, "TAPIR_TOKEN=tok"}
	code, so, se := execTapir(t, env, "sensors", "--output", "csv")
	rows, err := csv.NewReader(strings.NewReader(so)).ReadAll()
	if code != 0 || err != nil || len(rows) != 2 || rows[0][0] != "SENSOR" || rows[1][0] != "sensor-7" || rows[1][1] != "up" {
		t.Errorf("sensors csv: exit %d, %v, %q: %s", code, err, rows, se)
	}
	code, so, _ = execTapir(t, env, "sensors", "--output", "json")
	if code != 0 || !strings.HasPrefix(so, "[") || !strings.Contains(so, `"sensor-7"`) {
		t.Errorf("sensors json: exit %d: %s", code, so)
	}
	if code, _, _ = execTapir(t, env, "sensors", "--output", "xml"); code != 2 {
		t.Errorf("sensors --output xml: exit %d", code)
	}
}
