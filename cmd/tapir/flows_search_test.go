package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tapir-sensor/tapir/collector/query/querytest"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

var searchFrom = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// searchCollector serves 3000 records of real shapes (SNI and DNS names
// of the shared captures) over two hours.
func searchCollector(t *testing.T) (*liveCollector, []flow.Record, []string) {
	g := indextest.New(t, searchFrom, 2*time.Hour, 3000)
	g.Variants = 10
	recs := make([]flow.Record, 3000)
	g.Next(recs)
	c := serveStore(t, func(st *pebble.Store) {
		for i := 0; i < len(recs); i += 500 {
			if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "gen", Seq: uint64(i + 1), Records: recs[i : i+500]}); err != nil {
				t.Fatal(err)
			}
		}
	})
	return c, recs, []string{"--from", searchFrom.Format(time.RFC3339), "--to", searchFrom.Add(2 * time.Hour).Format(time.RFC3339)}
}

// expected returns the IDs of the records the query matches in the window.
func expected(t *testing.T, recs []flow.Record, expr string) map[string]bool {
	return querytest.MatchingIDs(t, recs, "("+expr+") and after 2024-05-01T10:00:00Z and before 2024-05-01T12:00:00Z", searchFrom)
}

func firstSNI(recs []flow.Record) string {
	for i := range recs {
		if recs[i].App != nil && recs[i].App.TLS != nil {
			return recs[i].App.TLS.ServerName
		}
	}
	return ""
}

var cursorHint = regexp.MustCompile(`--cursor (\S+)`)

// TestFlowsFieldSearchAndPages: tapir flows finds flows by SNI, and
// --sort with --limit pages through every match once, each page hinting
// the next cursor on stderr.
func TestFlowsFieldSearchAndPages(t *testing.T) {
	c, recs, win := searchCollector(t)
	sni := firstSNI(recs)
	expr := "sni == *" + sni[strings.IndexByte(sni, '.'):] + " or dns.question.name exists"
	want := expected(t, recs, expr)
	if len(want) < 120 {
		t.Fatalf("%q matches %d records", expr, len(want))
	}
	got := map[string]bool{}
	args := append([]string{"flows", "--query", expr, "--sort", "-bytes", "--limit", "50"}, win...)
	var lastBytes uint64 = 1 << 62
	for page := 0; ; page++ {
		code, so, se := execTapir(t, c.env(), args...)
		if code != 0 {
			t.Fatalf("page %d: exit %d: %s", page, code, se)
		}
		for _, l := range strings.Split(strings.TrimSpace(so), "\n") {
			var e struct {
				Network struct{ Bytes uint64 }
				Tapir   struct {
					FlowID string `json:"flow_id"`
				}
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("page %d: %v: %q", page, err, l)
			}
			if got[e.Tapir.FlowID] || e.Network.Bytes > lastBytes {
				t.Fatalf("page %d: %s repeated or out of order", page, e.Tapir.FlowID)
			}
			got[e.Tapir.FlowID], lastBytes = true, e.Network.Bytes
		}
		m := cursorHint.FindStringSubmatch(se)
		if m == nil {
			break
		}
		args = append([]string{"flows", "--query", expr, "--sort", "-bytes", "--limit", "50", "--cursor", m[1]}, win...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d flows over the pages, want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("flow %s missing", id)
		}
	}
}

// TestFlowsTopAndHistogram: --top N --by FIELD ranks the server's
// counts; --histogram draws one column per bucket and counts every
// matching flow.
func TestFlowsTopAndHistogram(t *testing.T) {
	c, recs, win := searchCollector(t)
	want := expected(t, recs, "tcp")
	counts := map[string]int{}
	for i := range recs {
		if want[recs[i].ID.String()] && recs[i].App != nil && recs[i].App.TLS != nil {
			counts[recs[i].App.TLS.ServerName]++
		}
	}
	type kv struct {
		k string
		v int
	}
	var rank []kv
	for k, v := range counts {
		rank = append(rank, kv{k, v})
	}
	sort.Slice(rank, func(i, j int) bool { return rank[i].v > rank[j].v || rank[i].v == rank[j].v && rank[i].k < rank[j].k })
	code, so, se := execTapir(t, c.env(), append([]string{"flows", "--query", "tcp", "--top", "3", "--by", "tls.client.server_name", "--output", "csv"}, win...)...)
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, se)
	}
	lines := strings.Split(strings.TrimSpace(so), "\n")
	if len(lines) != 4 || lines[0] != "tls.client.server_name,flows,packets,bytes" {
		t.Fatalf("top: %q", so)
	}
	for i, l := range lines[1:] {
		if !strings.HasPrefix(l, fmt.Sprintf("%s,%d,", rank[i].k, rank[i].v)) {
			t.Errorf("top row %d: %q, want %s with %d flows", i, l, rank[i].k, rank[i].v)
		}
	}

	code, so, se = execTapir(t, c.env(), append([]string{"flows", "--query", "tcp", "--histogram", "--buckets", "24"}, win...)...)
	out := strings.Split(strings.TrimSpace(so), "\n")
	if code != 0 || len(out) != 2 || utf8.RuneCountInString(out[0]) != 26 || !strings.Contains(out[1], fmt.Sprintf(" %d flows", len(want))) ||
		!strings.Contains(out[1], "5m0s per column") {
		t.Fatalf("histogram: exit %d: %q %s", code, so, se)
	}

	code, so, _ = execTapir(t, c.env(), "flows", "--fields")
	if code != 0 || !strings.Contains(so, "tls.client.server_name") || !strings.Contains(so, "dns.question.name") {
		t.Fatalf("--fields: exit %d: %s", code, so)
	}
}

// TestFlowsTopFallback: against a collector without the top N endpoint
// (an older release: 404), --top ranks the listed records itself.
func TestFlowsTopFallback(t *testing.T) {
	srv, _ := fakeAPI(t, nil)
	code, so, se := execTapir(t, []string{"TAPIR_SERVER=" + srv.URL, "TAPIR_TOKEN=tok"},
		"flows", "--top", "2", "--by", "packets", "--group", "destination.ip", "--output", "csv")
	want := "destination.ip,flows,packets,bytes\n10.0.0.2,1,14,6000\n10.0.0.3,1,0,0\n"
	if code != 0 || so != want {
		t.Fatalf("exit %d: %q, want %q\n%s", code, so, want, se)
	}
}
