package pebble

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
)

// errStop ends a search once the caller has what it needs.
var errStop = errors.New("stop")

// TestOrderedSearchReadsPostingsOfItsHours: a broad lookup over a day,
// read by start time and stopped after a page, reads the postings of
// the first hours only (the old search read every hour's postings and
// sorted every candidate first), and unstopped it yields exactly what
// SearchRecords yields, in the same order.
func TestOrderedSearchReadsPostingsOfItsHours(t *testing.T) {
	st := openTest(t, t.TempDir(), testConfig())
	defer st.Close()
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	recs := dayOfRecords(t, day, 6000)
	writeBatches(t, st, recs, 500)
	port, _ := flowindex.ByName("destination.port")
	lookup := flowindex.Term{Field: port, Value: flowindex.Value{N: int64(indextest.CommonDstPort(recs))}}
	from, to := day, day.Add(24*time.Hour)

	before := counterValue(t, st.index.postingsRead)
	var all []flow.ID
	if used, err := st.SearchRecords(context.Background(), from, to, lookup, func(r *flow.Record) error {
		all = append(all, r.ID)
		return nil
	}); err != nil || !used {
		t.Fatalf("SearchRecords: used %v, %v", used, err)
	}
	full := counterValue(t, st.index.postingsRead) - before
	if len(all) < 1000 {
		t.Fatalf("lookup yields %d records: too few for the test", len(all))
	}

	before = counterValue(t, st.index.postingsRead)
	var page []flow.ID
	_, err := st.SearchRecordsOrdered(context.Background(), from, to, lookup, func(r *flow.Record, _ int64) error {
		if page = append(page, r.ID); len(page) == 30 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("ordered search: %v", err)
	}
	paged := counterValue(t, st.index.postingsRead) - before
	t.Logf("a page of 30 of %d matches read %.0f posting keys, a full search %.0f", len(all), paged, full)
	if paged*6 > full {
		t.Errorf("a page of 30 of %d matches read %.0f posting keys, a full search %.0f", len(all), paged, full)
	}

	var ordered []flow.ID
	var last int64
	if used, err := st.SearchRecordsOrdered(context.Background(), from, to, lookup, func(r *flow.Record, floor int64) error {
		if floor < last {
			t.Fatalf("floor went back from %d to %d", last, floor)
		}
		last = floor
		ordered = append(ordered, r.ID)
		return nil
	}); err != nil || !used {
		t.Fatalf("ordered search: used %v, %v", used, err)
	}
	if !slices.Equal(ordered, all) {
		t.Fatalf("ordered search yields %d records, SearchRecords %d (or another order)", len(ordered), len(all))
	}
}

// TestHourSpans: spans end where time buckets end, so the record keys
// of a span sort before those of the next.
func TestHourSpans(t *testing.T) {
	for _, c := range []struct {
		name   string
		lo, hi uint32
		bucket time.Duration
		want   [][2]uint32
	}{
		{"minute", 10, 13, time.Minute, [][2]uint32{{10, 10}, {11, 11}, {12, 12}, {13, 13}}},
		{"hour", 10, 11, time.Hour, [][2]uint32{{10, 10}, {11, 11}}},
		{"one hour", 7, 7, time.Minute, [][2]uint32{{7, 7}}},
		{"90 minutes", 0, 7, 90 * time.Minute, [][2]uint32{{0, 2}, {3, 5}, {6, 7}}},
		{"7 seconds", 0, 9, 7 * time.Second, [][2]uint32{{0, 6}, {7, 9}}},
		{"huge hour", 1<<32 - 2, 1<<32 - 1, time.Minute, [][2]uint32{{1<<32 - 2, 1<<32 - 1}}},
	} {
		if got := hourSpans(c.lo, c.hi, int64(c.bucket)); !slices.Equal(got, c.want) {
			t.Errorf("%s: hourSpans(%d, %d) = %v, want %v", c.name, c.lo, c.hi, got, c.want)
		}
	}
}

// counterValue returns a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// dayOfRecords generates n records of real shapes starting over the day.
func dayOfRecords(t *testing.T, day time.Time, n int) []flow.Record {
	t.Helper()
	recs := make([]flow.Record, n)
	indextest.New(t, day, 24*time.Hour, n).Next(recs)
	return recs
}

// writeBatches writes recs into st in batches of per records (one
// record table and its postings each).
func writeBatches(t *testing.T, st *Store, recs []flow.Record, per int) {
	t.Helper()
	for i, seq := 0, uint64(1); i < len(recs); i, seq = i+per, seq+1 {
		b := &storage.Batch{SensorID: "gen", Seq: seq, Records: recs[i:min(i+per, len(recs))]}
		if _, err := st.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}
