package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// fakeRecords is a RecordSearcher answering canned documents.
type fakeRecords struct {
	docs   []json.RawMessage
	next   string
	err    error
	expr   string
	cursor string
	limit  int
}

func (f *fakeRecords) SearchFlows(_ context.Context, q *query.Query, cursor string, limit int) ([]json.RawMessage, string, error) {
	f.expr, f.cursor, f.limit = q.Root.String(), cursor, limit
	return f.docs, f.next, f.err
}

func (f *fakeRecords) Histogram(_ context.Context, q *query.Query, _ time.Duration, counts []int64, bytes []uint64) error {
	f.expr = q.Root.String()
	if f.err == nil {
		counts[0], bytes[0] = 3, 300
	}
	return f.err
}

func (f *fakeRecords) Top(_ context.Context, q *query.Query, fld *flowindex.Field, add func(string, int64, uint64, uint64) error) error {
	f.expr = q.Root.String() + " by " + fld.Name
	if f.err != nil {
		return f.err
	}
	for i, v := range []string{"a", "b", "c"} {
		if err := add(v, int64(i+1), uint64(10*(i+1)), uint64(100*(3-i))); err != nil {
			return err
		}
	}
	return nil
}

// queryFault is a translation error (BadQuery).
type queryFault struct{ error }

func (queryFault) BadQuery() bool { return true }

func recordsServer(t *testing.T, f *fakeRecords) *testServer {
	t.Helper()
	return startServerDeps(t, Dependencies{Store: openStore(t), Records: f, Now: func() time.Time { return searchDay }},
		func(c *Config) { c.Search.Backend = BackendOpenSearch })
}

// TestFlowsOpenSearchBackend: on search.backend opensearch, GET
// /api/v1/flows answers the searcher's documents as they are, passes the
// parsed query, the page size and the searcher's own cursor, and sends
// its next cursor.
func TestFlowsOpenSearchBackend(t *testing.T) {
	f := &fakeRecords{docs: []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage(`{"b":2}`)}, next: "NEXT"}
	ts := recordsServer(t, f)
	resp, body := ts.get(t, tokBob, "/api/v1/flows?limit=2&cursor=OPAQUE&query="+url.QueryEscape("tcp and sni == x"))
	if resp.StatusCode != 200 || string(body) != "{\"a\":1}\n{\"b\":2}\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if f.cursor != "OPAQUE" || f.limit != 2 || !strings.Contains(f.expr, "tls.client.server_name") {
		t.Fatalf("searcher got cursor %q limit %d query %q", f.cursor, f.limit, f.expr)
	}
	h := resp.Header
	if h.Get(headerSearch) != "opensearch" || h.Get(headerNext) != "NEXT" || h.Get("X-Tapir-More") != "true" || h.Get(headerWindow) == "" {
		t.Fatalf("headers %v", h)
	}
}

// TestAggregatesOpenSearchBackend: histogram and top on search.backend
// opensearch come from the searcher, ranked as on the store.
func TestAggregatesOpenSearchBackend(t *testing.T) {
	f := &fakeRecords{}
	ts := recordsServer(t, f)
	resp, body := ts.get(t, tokBob, "/api/v1/flows/histogram?buckets=4&query=tcp")
	var h histogram
	if err := json.Unmarshal(body, &h); resp.StatusCode != 200 || err != nil || h.Counts[0] != 3 || h.Bytes[0] != 300 || resp.Header.Get(headerSearch) != "opensearch" {
		t.Fatalf("histogram: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.get(t, tokBob, "/api/v1/flows/top?by=sni&n=2&order=bytes&query=tcp")
	var top topBody
	if err := json.Unmarshal(body, &top); resp.StatusCode != 200 || err != nil || len(top.Rows) != 2 || top.Rows[0].Value != "a" || top.Other.Flows != 3 ||
		f.expr != "proto 6 by tls.client.server_name" {
		t.Fatalf("top: %d %s (searcher got %q)", resp.StatusCode, body, f.expr)
	}
	f.err = queryFault{errors.New("untranslatable")}
	for _, p := range []string{"/api/v1/flows/histogram?query=tcp", "/api/v1/flows/top?by=sni&query=tcp"} {
		if resp, body := ts.get(t, tokBob, p); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

// TestFlowsOpenSearchBackendRefuses: a query the searcher cannot
// translate and a sort other than start answer 400; an engine failure
// answers 502, never another backend's results.
func TestFlowsOpenSearchBackendRefuses(t *testing.T) {
	f := &fakeRecords{err: queryFault{errors.New("threat.indicator.name == x: nested field")}}
	ts := recordsServer(t, f)
	for _, p := range []string{"/api/v1/flows?query=tcp", "/api/v1/flows?sort=-bytes"} {
		resp, body := ts.get(t, tokBob, p)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "bad_request") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	f.err = errors.New("connection refused")
	if resp, body := ts.get(t, tokBob, "/api/v1/flows?query=tcp"); resp.StatusCode != 502 {
		t.Errorf("engine down: %d %s", resp.StatusCode, body)
	}
}

// TestSearchBackendConfig: the backend is store or opensearch, and
// opensearch needs a searcher.
func TestSearchBackendConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Search.Backend != BackendStore {
		t.Fatalf("default backend %q", cfg.Search.Backend)
	}
	cfg.Search.Backend = "elastic"
	if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("backend elastic: %v", err)
	}
	cfg.Search.Backend = BackendOpenSearch
	if _, err := New(cfg, Dependencies{Store: openStore(t)}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "opensearch") {
		t.Fatalf("opensearch without a searcher: %v", err)
	}
}
