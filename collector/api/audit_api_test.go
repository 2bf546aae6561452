package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
)

// auditPage is a GET /api/v1/audit answer.
type auditPage struct {
	Entries []json.RawMessage `json:"entries"`
	Next    string            `json:"next"`
}

// auditLines returns every line of the audit log, oldest first, rotated
// files included.
func auditLines(t *testing.T, ts *testServer, keep int) []string {
	t.Helper()
	var out []string
	for i := keep; i >= 0; i-- {
		p := ts.auditPath
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
	}
	return out
}

// TestAuditLogAPI: admins page through the whole audit log, rotated
// files included, newest first, with the next cursor; other roles get
// 403; a bad cursor is 400.
func TestAuditLogAPI(t *testing.T) {
	const keep = 3
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1"}, func(cfg *Config) {
		cfg.Audit.MaxBytes = 4096
		cfg.Audit.Keep = keep
	})
	for i := 0; i < 30; i++ {
		ts.get(t, tokAlice, "/api/v1/flows/"+c.flows[0].rec.ID.String()+"/packets?limit="+strconv.Itoa(i+1))
	}
	for _, tok := range []string{tokAlice, tokBob} {
		if resp, _ := ts.get(t, tok, "/api/v1/audit"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("non-admin audit listing: %d", resp.StatusCode)
		}
	}
	if _, err := os.Stat(ts.auditPath + ".1"); err != nil {
		t.Fatalf("the audit log did not rotate: %v", err)
	}
	want := auditLines(t, ts, keep) // the listing's own entries are written after it answers
	slices.Reverse(want)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		var p auditPage
		getJSON(t, ts, tokRoot, "/api/v1/audit?limit=7&before="+url.QueryEscape(cursor), &p)
		if len(p.Entries) > 7 {
			t.Fatalf("page of %d entries", len(p.Entries))
		}
		for _, e := range p.Entries {
			got = append(got, string(e))
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		for _, g := range got {
			t.Log(g[:120])
		}
		t.Fatalf("listing (%d entries) does not end with the log newest first (%d lines)", len(got), len(want))
	}
	// The listing is audited: the newest entry now is its last page.
	var p auditPage
	getJSON(t, ts, tokRoot, "/api/v1/audit?limit=1", &p)
	var e AuditEntry
	if len(p.Entries) != 1 || p.Next == "" {
		t.Fatalf("limit 1: %d entries, next %q", len(p.Entries), p.Next)
	}
	if err := json.Unmarshal(p.Entries[0], &e); err != nil || e.Endpoint != "audit_log" || e.Subject != "root" || e.Status != http.StatusOK {
		t.Errorf("newest entry %s (%v)", p.Entries[0], err)
	}
	if resp, _ := ts.get(t, tokRoot, "/api/v1/audit?before=notacursor"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", resp.StatusCode)
	}
}
