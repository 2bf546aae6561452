package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/query/querytest"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// TestFlowsByStartReadsAPage: a broad index query paged by start time
// (the default sort) reads about a page of candidate records per page,
// not every match, and its pages are still exactly the matches in
// (start, flow ID) order.
func TestFlowsByStartReadsAPage(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := pebble.DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes = 8 << 20
	cfg.MemTableBytes = 4 << 20
	st, err := pebble.Open(t.TempDir(), cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := indextest.New(t, searchDay, 2*time.Hour, 3000)
	recs := make([]flow.Record, 3000)
	g.Next(recs)
	writeBatches(t, st, []*storage.Batch{{SensorID: "gen", Seq: 1, Records: recs}})
	ts := startServer(t, st, searchDay.Add(3*time.Hour), nil)

	expr := "dst port " + strconv.Itoa(int(indextest.CommonDstPort(recs))) + " and after 2024-05-01T09:00:00Z and before 2024-05-01T12:00:00Z"
	want := matchingInOrder(t, recs, expr)
	const limit = 20
	if len(want) < 10*limit {
		t.Fatalf("%q matches %d records: too few", expr, len(want))
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		before := readsTotal(t, reg)
		v := url.Values{"query": {expr}, "limit": {"20"}, "cursor": {cursor}}
		resp, body := ts.get(t, tokBob, "/api/v1/flows?"+v.Encode())
		if resp.StatusCode != 200 || resp.Header.Get(headerSearch) != "index" {
			t.Fatalf("status %d, search %q: %s", resp.StatusCode, resp.Header.Get(headerSearch), body)
		}
		if reads := readsTotal(t, reg) - before; page == 0 && reads > 4*limit {
			t.Errorf("first page of %d read %.0f candidates of %d matches", limit, reads, len(want))
		}
		for _, l := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			var e ecsLine
			if err := json.Unmarshal(l, &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Tapir.FlowID)
		}
		if cursor = resp.Header.Get(headerNext); cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages hold %d records, want the %d matches in order", len(got), len(want))
	}
}

// matchingInOrder returns the IDs of the records expr matches by start
// time then flow ID.
func matchingInOrder(t *testing.T, recs []flow.Record, expr string) []string {
	ids := querytest.MatchingIDs(t, recs, expr, searchDay.Add(3*time.Hour))
	var rs []*flow.Record
	for i := range recs {
		if ids[recs[i].ID.String()] {
			rs = append(rs, &recs[i])
		}
	}
	slices.SortFunc(rs, func(a, b *flow.Record) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID.String()
	}
	return out
}

// readsTotal reads the store's tapir_pebble_search_index_reads_total.
func readsTotal(t *testing.T, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "tapir_pebble_search_index_reads_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no tapir_pebble_search_index_reads_total")
	return 0
}
