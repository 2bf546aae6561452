package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// benchValues are values the stored records carry, for the benchmark's
// queries (kept beside a reused store).
type benchValues struct {
	Records int      `json:"records"`
	Names   []string `json:"names"`
	Clients []string `json:"clients"`
	Servers []string `json:"servers"`
}

// benchStore opens (filling it the first time) a store of n generated
// records over one day: TAPIR_SEARCH_STORE names a directory to keep and
// reuse between runs (bench/search.sh), else a temporary one.
func benchStore(b *testing.B, n int) (*pebble.Store, *benchValues) {
	dir := os.Getenv("TAPIR_SEARCH_STORE")
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, strconv.Itoa(n))
	meta := filepath.Join(dir, "values.json")
	var v benchValues
	if raw, err := os.ReadFile(meta); err == nil && json.Unmarshal(raw, &v) == nil && v.Records == n {
		return openStore(b, filepath.Join(dir, "store"), true), &v
	}
	_ = os.RemoveAll(dir)
	st := openStore(b, filepath.Join(dir, "store"), true)
	v = fillBench(b, st, n)
	raw, _ := json.Marshal(v)
	if err := os.WriteFile(meta, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	return st, &v
}

// fillBench writes n records over the day and samples distinct values.
func fillBench(b *testing.B, st *pebble.Store, n int) benchValues {
	g := indextest.New(b, day, 24*time.Hour, n)
	recs := make([]flow.Record, 1000)
	seen := map[string]bool{}
	v := benchValues{Records: n}
	keep := func(list *[]string, s string) {
		if len(*list) < 5000 && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for seq := uint64(1); ; seq++ {
		k := g.Next(recs)
		if k == 0 {
			return v
		}
		for i := range recs[:k] {
			r := &recs[i]
			if r.App != nil && r.App.TLS != nil {
				keep(&v.Names, r.App.TLS.ServerName)
			}
			keep(&v.Clients, indextest.Addr(r, true).String())
			keep(&v.Servers, indextest.Addr(r, false).String())
		}
		if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "bench", Seq: seq, Records: recs[:k]}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchQueries draws investigator queries over the whole day, each value
// drawn uniformly among the distinct values stored.
func benchQueries(b *testing.B, v *benchValues, k int) []*query.Query {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	forms := []func() string{
		func() string { return "tls.client.server_name == " + pick(v.Names) },
		func() string { return "host " + pick(v.Clients) },
		func() string { return "destination.ip == " + pick(v.Servers) + " and dst port 443" },
		func() string { return "src host " + pick(v.Clients) + " and sni == *.google.com" },
		func() string { return "dns.question.name == " + pick(v.Names) + " or sni == " + pick(v.Names) },
	}
	out := make([]*query.Query, k)
	for i := range out {
		s := forms[i%len(forms)]() + " and after 2024-05-01T00:00:00Z and before 2024-05-02T00:00:00Z"
		q, err := query.Parse(s, day.Add(48*time.Hour), query.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		out[i] = q
	}
	return out
}

// runPage answers q through the index as a page of at most page rows by
// start time would (collector/api's flows search): it stops once more
// than page records matched and the floor passes the latest start seen
// (a little later than the API, which compares with its page's last
// row). It returns the matches read, or -1 when the index was not used.
func runPage(b *testing.B, st *pebble.Store, q *query.Query, page int) int {
	n, latest := 0, int64(math.MinInt64)
	stop := errors.New("page full")
	used, err := st.SearchRecordsOrdered(context.Background(), q.From, q.To, q.IndexLookup(), func(r *flow.Record, floor int64) error {
		if n > page && floor > latest {
			return stop
		}
		if q.Match(r) {
			n++
			latest = max(latest, r.Start.UnixNano())
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		b.Fatal(err)
	}
	if !used {
		return -1
	}
	return n
}

// run answers q through the index (index) or a scan and returns its
// matches.
func run(b *testing.B, st *pebble.Store, q *query.Query, index bool) int {
	n := 0
	fn := func(r *flow.Record) error {
		if q.Match(r) {
			n++
		}
		return nil
	}
	if index {
		used, err := st.SearchRecords(context.Background(), q.From, q.To, q.IndexLookup(), fn)
		if err != nil {
			b.Fatal(err)
		}
		if used {
			return n
		}
	}
	if err := st.ScanRecords(context.Background(), q.From, q.To, fn); err != nil {
		b.Fatal(err)
	}
	return n
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkSearch measures day-long searches over TAPIR_SEARCH_RECORDS
// generated records (default 200000) through the search index (p50 and
// p99 of 100 queries per op) and, beside them, full scans of the same
// window (TAPIR_SEARCH_SCANS queries, default 3), in the same run. One op
// is the 100 indexed queries. TAPIR_SEARCH_PAGE=N reads each indexed
// query as the first page of N rows by start time (the API's default
// sort) instead of every match.
func BenchmarkSearch(b *testing.B) {
	n, scans := 200000, 3
	if s := os.Getenv("TAPIR_SEARCH_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("TAPIR_SEARCH_SCANS"); s != "" {
		scans, _ = strconv.Atoi(s)
	}
	page, _ := strconv.Atoi(os.Getenv("TAPIR_SEARCH_PAGE"))
	st, v := benchStore(b, n)
	defer st.Close()
	qs := benchQueries(b, v, 100)
	var lat []time.Duration
	matched := 0
	b.ResetTimer()
	for range b.N {
		for _, q := range qs {
			t0 := time.Now()
			m := -1
			if page > 0 {
				m = runPage(b, st, q, page)
			}
			if m < 0 {
				m = run(b, st, q, true)
			}
			matched += m
			lat = append(lat, time.Since(t0))
		}
	}
	b.StopTimer()
	var scan []time.Duration
	for _, q := range qs[:min(scans, len(qs))] {
		t0 := time.Now()
		run(b, st, q, false)
		scan = append(scan, time.Since(t0))
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(percentile(lat, 0.5)), "index-p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "index-p99-ms")
	b.ReportMetric(float64(matched)/float64(len(lat)), "matches/query")
	if len(scan) > 0 {
		b.ReportMetric(ms(percentile(scan, 0.5)), "scan-p50-ms")
		b.ReportMetric(float64(percentile(scan, 0.5))/float64(percentile(lat, 0.5)), "scan/index-p50")
	}
	if idx, rec, err := st.IndexDiskBytes(); err == nil {
		b.ReportMetric(float64(idx)/float64(n), "index-B/record")
		b.ReportMetric(float64(rec)/float64(n), "record-B/record")
	}
	b.Logf("%d records: %d queries, %d scans", n, len(lat), len(scan))
}
