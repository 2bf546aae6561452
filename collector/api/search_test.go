package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/query/querytest"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
)

var searchDay = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// searchServer serves 3000 records of real shapes over two hours.
func searchServer(t *testing.T) (*testServer, []flow.Record) {
	st := openStore(t)
	g := indextest.New(t, searchDay, 2*time.Hour, 3000)
	g.Variants = 20
	recs := make([]flow.Record, 3000)
	g.Next(recs)
	var bs []*storage.Batch
	for i := 0; i < len(recs); i += 500 {
		bs = append(bs, &storage.Batch{SensorID: "gen", Seq: uint64(i + 1), Records: recs[i : i+500]})
	}
	writeBatches(t, st, bs)
	return startServer(t, st, searchDay.Add(3*time.Hour), nil), recs
}

// ecsLine is what the tests read of an ECS record line.
type ecsLine struct {
	Network struct{ Bytes uint64 } `json:"network"`
	Event   struct{ Start time.Time }
	Tapir   struct {
		FlowID string `json:"flow_id"`
	} `json:"tapir"`
}

// TestFlowsSortAndPages: every page of a sorted search is in order, the
// pages together hold each matching record once, the last page has no
// cursor, and the window and search method are in the headers.
func TestFlowsSortAndPages(t *testing.T) {
	ts, recs := searchServer(t)
	window := " and after 2024-05-01T10:00:00Z and before 2024-05-01T12:00:00Z"
	name := ""
	for i := range recs {
		if recs[i].App != nil && recs[i].App.TLS != nil {
			name = recs[i].App.TLS.ServerName
			break
		}
	}
	for _, c := range []struct {
		expr, sort, via string
	}{
		{"tcp", "-bytes", "scan"},
		{"tcp", "", "scan"},
		{"sni == *" + name[strings.IndexByte(name, '.'):], "-start", "index"},
		{"destination.geo.country_iso_code == de or dns.question.name exists", "duration", "scan"},
		{"destination.geo.country_iso_code == DE", "packets", "index"},
	} {
		c.expr = "(" + c.expr + ")"
		want := querytest.MatchingIDs(t, recs, c.expr+window, searchDay.Add(3*time.Hour))
		if len(want) < 10 {
			t.Fatalf("%q matches %d records: too few for paging", c.expr, len(want))
		}
		got := map[string]bool{}
		cursor, pages := "", 0
		var prev *ecsLine
		for {
			v := url.Values{"query": {c.expr + window}, "limit": {"97"}, "sort": {c.sort}, "cursor": {cursor}}
			resp, body := ts.get(t, tokBob, "/api/v1/flows?"+v.Encode())
			if resp.StatusCode != 200 {
				t.Fatalf("%q: status %d: %s", c.expr, resp.StatusCode, body)
			}
			if w := resp.Header.Get(headerWindow); w != "2024-05-01T10:00:00Z/2024-05-01T12:00:00Z" {
				t.Errorf("window header %q", w)
			}
			if h := resp.Header.Get(headerSearch); h != c.via {
				t.Errorf("%q: searched by %q, want %q", c.expr, h, c.via)
			}
			pages++
			for _, l := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
				var e ecsLine
				if err := json.Unmarshal(l, &e); err != nil {
					t.Fatalf("%q: %v: %s", c.expr, err, l)
				}
				if got[e.Tapir.FlowID] {
					t.Fatalf("%q: %s on two pages", c.expr, e.Tapir.FlowID)
				}
				got[e.Tapir.FlowID] = true
				if prev != nil && outOfOrder(c.sort, prev, &e) {
					t.Fatalf("%q sort %q: %+v before %+v", c.expr, c.sort, prev, e)
				}
				prev = &e
			}
			cursor = resp.Header.Get(headerNext)
			if (cursor != "") != (resp.Trailer.Get("X-Tapir-More") == "true") {
				t.Fatalf("cursor %q with X-Tapir-More %q", cursor, resp.Trailer.Get("X-Tapir-More"))
			}
			if cursor == "" {
				break
			}
		}
		if len(got) != len(want) || pages != (len(want)+96)/97 {
			t.Fatalf("%q: %d records in %d pages, want %d", c.expr, len(got), pages, len(want))
		}
		for id := range want {
			if !got[id] {
				t.Fatalf("%q: %s missing", c.expr, id)
			}
		}
	}
}

func outOfOrder(sort string, a, b *ecsLine) bool {
	switch sort {
	case "-bytes":
		return a.Network.Bytes < b.Network.Bytes
	case "-start":
		return a.Event.Start.Before(b.Event.Start)
	case "":
		return a.Event.Start.After(b.Event.Start)
	}
	return false
}

// TestSearchAggregates: the histogram counts every matching flow once
// by start time; top N ranks values by flows and other sums the rest;
// /api/v1/fields lists the registry.
func TestSearchAggregates(t *testing.T) {
	ts, recs := searchServer(t)
	window := " and after 2024-05-01T10:00:00Z and before 2024-05-01T12:00:00Z"
	want := querytest.MatchingIDs(t, recs, "tcp"+window, searchDay)
	v := url.Values{"query": {"tcp" + window}, "buckets": {"24"}}
	resp, body := ts.get(t, tokBob, "/api/v1/flows/histogram?"+v.Encode())
	var h histogram
	if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil {
		t.Fatalf("histogram: %d %s", resp.StatusCode, body)
	}
	var sum int64
	for _, n := range h.Counts {
		sum += n
	}
	if len(h.Counts) != 24 || h.BucketSeconds != 300 || sum != int64(len(want)) || !h.From.Equal(searchDay) {
		t.Fatalf("histogram: %d buckets of %ds, %d flows (want %d): %s", len(h.Counts), h.BucketSeconds, sum, len(want), body)
	}

	v = url.Values{"query": {"tcp" + window}, "by": {"tls.client.server_name"}, "n": {"5"}}
	resp, body = ts.get(t, tokBob, "/api/v1/flows/top?"+v.Encode())
	var top topBody
	if resp.StatusCode != 200 || json.Unmarshal(body, &top) != nil || len(top.Rows) != 5 {
		t.Fatalf("top: %d %s", resp.StatusCode, body)
	}
	counts := map[string]int64{}
	for id := range want {
		for i := range recs {
			if recs[i].ID.String() == id && recs[i].App != nil && recs[i].App.TLS != nil {
				counts[recs[i].App.TLS.ServerName]++
			}
		}
	}
	total := top.Other.Flows
	for i, r := range top.Rows {
		total += r.Flows
		if counts[r.Value] != r.Flows || i > 0 && r.Flows > top.Rows[i-1].Flows {
			t.Fatalf("top row %d %+v, counted %d", i, r, counts[r.Value])
		}
	}
	var all int64
	for _, n := range counts {
		all += n
	}
	if total != all {
		t.Fatalf("top: rows and other hold %d flows, want %d", total, all)
	}

	resp, body = ts.get(t, tokBob, "/api/v1/fields")
	var fields []fieldInfo
	if resp.StatusCode != 200 || json.Unmarshal(body, &fields) != nil {
		t.Fatalf("fields: %d %s", resp.StatusCode, body)
	}
	if !sort.SliceIsSorted(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name }) {
		t.Error("fields not sorted")
	}
	found := false
	for _, f := range fields {
		if f.Name == "tls.client.server_name" && f.Type == "keyword" && f.Indexed && f.Description != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("no tls.client.server_name in %s", body)
	}
}

// TestSearchBadRequests: malformed parameters answer 400 bad_request.
func TestSearchBadRequests(t *testing.T) {
	ts, _ := searchServer(t)
	for _, p := range []string{
		"/api/v1/flows?sort=sni",
		"/api/v1/flows?cursor=zzz",
		"/api/v1/flows?sort=bytes&cursor=" + (cursor{sort: "start"}).String(),
		"/api/v1/flows?query=" + url.QueryEscape("sni > a"),
		"/api/v1/flows/top?by=no.such.field",
		"/api/v1/flows/top?by=sni&order=size",
		"/api/v1/flows/histogram?buckets=0",
	} {
		resp, body := ts.get(t, tokBob, p)
		if resp.StatusCode != 400 || !strings.Contains(string(body), "bad_request") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	if resp, _ := ts.get(t, "", "/api/v1/fields"); resp.StatusCode != 401 {
		t.Errorf("fields without a token: %d", resp.StatusCode)
	}
}
