package query_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

var day = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

func openStore(t testing.TB, dir string, index bool) *pebble.Store {
	t.Helper()
	cfg := pebble.DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes, cfg.MemTableBytes = 8<<20, 4<<20
	cfg.SearchIndex = index
	st, err := pebble.Open(dir, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fill writes n generated records over the day, some of them long and
// some reported twice (the second report with another server name, so
// the first report's postings are stale), and returns them.
func fill(t testing.TB, st storage.Writer, n int) []flow.Record {
	t.Helper()
	g := indextest.New(t, day, 24*time.Hour, n)
	g.Variants = 50
	all := make([]flow.Record, n)
	g.Next(all)
	for i := range all {
		if i%97 == 0 {
			all[i].End = all[i].Start.Add(40 * time.Minute) // a long flow
		}
	}
	var seq uint64
	for i := 0; i < n; i += 500 {
		seq++
		b := &storage.Batch{SensorID: "gen", Seq: seq, Records: all[i:min(i+500, n)]}
		if _, err := st.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	var upd []flow.Record
	for i := 0; i < n; i += 13 {
		r := all[i]
		r.Segment = 1
		if r.App != nil && r.App.TLS != nil {
			tls := *r.App.TLS
			tls.ServerName = "renamed." + tls.ServerName
			r.App = &flow.AppMeta{TLS: &tls}
		}
		all[i] = r
		upd = append(upd, r)
	}
	seq++
	if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "gen", Seq: seq, Records: upd}); err != nil {
		t.Fatal(err)
	}
	return all
}

// randomQuery builds a query from the records' own values.
func randomQuery(rng *rand.Rand, recs []flow.Record) string {
	r := &recs[rng.IntN(len(recs))]
	name := func() string {
		if r.App != nil && r.App.TLS != nil {
			return r.App.TLS.ServerName
		}
		if r.App != nil && r.App.DNS != nil {
			return r.App.DNS.QueryName
		}
		return "absent.example"
	}
	src, dst := indextest.Addr(r, true), indextest.Addr(r, false)
	terms := []func() string{
		func() string { return "sni == " + name() },
		func() string { return "tls.client.server_name == " + strings.ToUpper(name()) },
		func() string { return "dns.question.name == " + name() },
		func() string { return "destination.domain == *." + name()[strings.IndexByte(name(), '.')+1:] },
		func() string { return "sni == " + name()[:min(4, len(name()))] + "*" },
		func() string { return "sni == *" + name()[len(name())/2:] },
		func() string { return "host " + src.String() },
		func() string { return "src host " + src.String() + " and dst host " + dst.String() },
		func() string { return "dst net " + dst.String() + "/16" },
		func() string { return "destination.ip == " + dst.String() },
		func() string { return fmt.Sprintf("dst port %d", r.Tuple.DstPort) },
		func() string { return fmt.Sprintf("port %d", r.Tuple.SrcPort) },
		func() string { return "network.community_id == " + r.CommunityID },
		func() string {
			return "destination.geo.country_iso_code == " + r.Enrichment.Destination.Geo.CountryISOCode
		},
		func() string { return fmt.Sprintf("destination.as.number == %d", r.Enrichment.Destination.AS.Number) },
		func() string { return "tapir.sensor_id == " + r.SensorID },
		func() string { return "ja4 == t13d1516h2_8daaf6152771_e5627efa2ab1" },
		func() string { return fmt.Sprintf("packets > %d", r.Source.Packets) },
		func() string { return "tcp" },
		func() string { return "duration >= 1s" },
	}
	pick := func() string { return terms[rng.IntN(len(terms))]() }
	var q string
	switch rng.IntN(5) {
	case 0:
		q = pick()
	case 1:
		q = pick() + " and " + pick()
	case 2:
		q = "(" + pick() + " or " + pick() + ") and " + pick()
	case 3:
		q = pick() + " and not " + pick()
	default:
		q = pick() + " or " + pick()
	}
	from := day.Add(time.Duration(rng.IntN(20)) * time.Hour)
	to := from.Add(time.Duration(1+rng.IntN(6)) * time.Hour)
	return fmt.Sprintf("(%s) and after %s and before %s", q, from.Format(time.RFC3339), to.Format(time.RFC3339))
}

// ids runs the query through the index (when it has a lookup) or a scan.
func ids(t *testing.T, st *pebble.Store, q *query.Query, index bool) ([]flow.ID, bool) {
	t.Helper()
	var out []flow.ID
	keep := func(r *flow.Record) error {
		if q.Match(r) {
			out = append(out, r.ID)
		}
		return nil
	}
	if index {
		if l := q.IndexLookup(); l != nil {
			used, err := st.SearchRecords(context.Background(), q.From, q.To, l, keep)
			if err != nil {
				t.Fatal(err)
			}
			if used {
				return out, true
			}
		}
	}
	if err := st.ScanRecords(context.Background(), q.From, q.To, keep); err != nil {
		t.Fatal(err)
	}
	return out, false
}

// TestIndexEqualsScan: random queries over records of real shapes give
// exactly the same records, in the same order, through the search index
// as through a full scan of the window; the index stays exact across a
// reopen and after a rebuild.
func TestIndexEqualsScan(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, true)
	recs := fill(t, st, 20000)
	rng := rand.New(rand.NewPCG(7, 7))
	queries := make([]*query.Query, 300)
	for i := range queries {
		s := randomQuery(rng, recs)
		q, err := query.Parse(s, day.Add(48*time.Hour), query.DefaultConfig())
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		queries[i] = q
	}
	check := func(st *pebble.Store, what string) {
		used, nonEmpty := 0, 0
		for _, q := range queries {
			scan, _ := ids(t, st, q, false)
			got, via := ids(t, st, q, true)
			if !slices.Equal(scan, got) {
				t.Fatalf("%s: %q: index %d records, scan %d", what, q, len(got), len(scan))
			}
			if via {
				used++
			}
			if len(scan) > 0 {
				nonEmpty++
			}
		}
		if used < len(queries)/2 || nonEmpty < len(queries)/3 {
			t.Fatalf("%s: the index answered %d of %d queries, %d matched something", what, used, len(queries), nonEmpty)
		}
		t.Logf("%s: index answered %d of %d queries, %d matched something", what, used, len(queries), nonEmpty)
	}
	check(st, "fresh")
	st.Close()
	st = openStore(t, dir, true)
	if !st.IndexReady() {
		t.Fatal("index not ready after reopen")
	}
	check(st, "reopened")
	if n, err := st.RebuildIndex(context.Background()); err != nil || n != int64(len(recs)) {
		t.Fatalf("RebuildIndex: %d records, %v", n, err)
	}
	check(st, "rebuilt")
	st.Close()
}

// TestIndexOffThenOn: a store opened with the index off forgets that its
// index is complete; opened with it on again, searches scan (never use
// postings missing the records written meanwhile) until a rebuild.
func TestIndexOffThenOn(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, true)
	fill(t, st, 1000)
	st.Close()
	st = openStore(t, dir, false)
	recs := fill(t, st, 1000) // same IDs' newer reports, without postings
	st.Close()
	st = openStore(t, dir, true)
	defer st.Close()
	if st.IndexReady() {
		t.Fatal("index ready after records were written without it")
	}
	q, err := query.Parse("sni == renamed.* and after 2024-05-01 and before 2024-05-02", day, query.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if used, err := st.SearchRecords(context.Background(), q.From, q.To, q.IndexLookup(), func(*flow.Record) error { return nil }); used || err != nil {
		t.Fatalf("search used an incomplete index: %v %v", used, err)
	}
	if _, err := st.RebuildIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	scan, _ := ids(t, st, q, false)
	got, via := ids(t, st, q, true)
	if !via || !slices.Equal(scan, got) || len(got) == 0 || len(recs) == 0 {
		t.Fatalf("after rebuild: index %v, %d records, scan %d", via, len(got), len(scan))
	}
}

// TestIndexCorruptionIsAnError: a byte flipped anywhere in the store's
// tables never changes a search's answer silently: the search (or the
// open) fails with an error (storage.ErrCorrupt for damaged data), or
// answers exactly as the intact store did.
func TestIndexCorruptionIsAnError(t *testing.T) {
	clean := t.TempDir()
	st := openStore(t, clean, true)
	recs := fill(t, st, 5000)
	if _, _, err := st.IndexDiskBytes(); err != nil { // flush into sstables
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var qs []*query.Query
	want := map[*query.Query][]flow.ID{}
	for len(qs) < 12 {
		q, err := query.Parse(randomQuery(rng, recs), day.Add(48*time.Hour), query.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if q.IndexLookup() == nil {
			continue
		}
		qs = append(qs, q)
		want[q], _ = ids(t, st, q, false)
	}
	st.Close()
	ssts, _ := filepath.Glob(filepath.Join(clean, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sstables")
	}
	errs, same := 0, 0
	for k := range 24 {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		sst := filepath.Join(dir, filepath.Base(ssts[k%len(ssts)]))
		b, err := os.ReadFile(sst)
		if err != nil {
			t.Fatal(err)
		}
		off := (k/len(ssts) + 1) * len(b) / (24/len(ssts) + 2)
		b[off] ^= 0x10
		if err := os.WriteFile(sst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := pebble.DefaultConfig()
		cfg.MinFreeBytes = 0
		st, err := pebble.Open(dir, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			errs++
			continue
		}
		for _, q := range qs {
			var got []flow.ID
			_, err := st.SearchRecords(context.Background(), q.From, q.To, q.IndexLookup(), func(r *flow.Record) error {
				if q.Match(r) {
					got = append(got, r.ID)
				}
				return nil
			})
			switch {
			case err != nil && !errors.Is(err, storage.ErrCorrupt):
				t.Fatalf("flip at %d of %s: %v, not storage.ErrCorrupt", off, filepath.Base(sst), err)
			case err != nil:
				errs++
			case !slices.Equal(got, want[q]):
				t.Fatalf("flip at %d of %s: %q answered %d records, %d intact", off, filepath.Base(sst), q, len(got), len(want[q]))
			default:
				same++
			}
		}
		st.Close()
	}
	t.Logf("%d answers as intact, %d errors", same, errs)
	if errs == 0 {
		t.Fatal("no flip was detected: the test flipped nothing that was read")
	}
}
