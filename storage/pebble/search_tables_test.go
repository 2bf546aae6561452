package pebble

import (
	"bytes"
	"context"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// TestAndOfBroadTermsReadsFewRecordTables: an `and` of two terms that
// each occur in every batch of the day but together in three records
// reads the record tables of those three records' batches only (the old
// search resolved every posting of both terms to record keys first,
// reading every batch's record table twice), and still answers exactly:
// the records of both terms, the same by start time; an `or` of them
// answers their union.
func TestAndOfBroadTermsReadsFewRecordTables(t *testing.T) {
	st := openTest(t, t.TempDir(), testConfig())
	defer st.Close()
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	const n, per = 6000, 100
	recs := dayOfRecords(t, day, n)
	client := netip.MustParseAddr("192.0.2.77")
	both := map[int]bool{150: true, 3050: true, 5950: true}
	for i := range recs {
		if i%2 == 0 || both[i] {
			recs[i].Tuple.DstPort = 4444
		}
		if i%2 == 1 || both[i] {
			recs[i].Tuple.Src, recs[i].Tuple.Family = flow.AddrFromNetip(client)
		}
	}
	writeBatches(t, st, recs, per)
	port, _ := flowindex.ByName("destination.port")
	src, _ := flowindex.ByName("source.ip")
	portTerm := flowindex.Term{Field: port, Value: flowindex.Value{N: 4444}}
	srcTerm := flowindex.Term{Field: src, Value: flowindex.Value{A: client}}
	hasPort := func(r *flow.Record) bool { return r.Tuple.DstPort == 4444 }
	hasSrc := func(r *flow.Record) bool { return r.Tuple.Src.Netip(r.Tuple.Family) == client }
	and := func(r *flow.Record) bool { return hasPort(r) && hasSrc(r) }
	or := func(r *flow.Record) bool { return hasPort(r) || hasSrc(r) }
	from, to := day, day.Add(24*time.Hour)

	before := counterValue(t, st.search.tablesRead)
	got := searchIDs(t, st, from, to, flowindex.All{portTerm, srcTerm}, and)
	tables := counterValue(t, st.search.tablesRead) - before
	if want := wantIDs(recs, and); !slices.Equal(got, want) {
		t.Fatalf("and: %d records, want %d", len(got), len(want))
	}
	t.Logf("and of two terms of %d batches, %d records in common: %.0f record tables read", n/per, len(got), tables)
	if len(got) != len(both) || tables > float64(len(both)) {
		t.Errorf("and of two terms of %d batches, %d records in common: %.0f record tables read, want at most %d", n/per, len(got), tables, len(both))
	}
	if got := orderedIDs(t, st, from, to, flowindex.All{srcTerm, portTerm}, and); !slices.Equal(got, wantIDs(recs, and)) {
		t.Errorf("ordered and: %d records, want %d", len(got), len(both))
	}
	if got, want := searchIDs(t, st, from, to, flowindex.Any{portTerm, srcTerm}, or), wantIDs(recs, or); !slices.Equal(got, want) {
		t.Errorf("or: %d records, want %d", len(got), len(want))
	}
}

// TestUncappedOrCandidates: a span after the first whose lookup passes
// the cap is read whole, with the limit math.MaxInt; an `or` then yields
// its candidates (its 2*limit check overflowed to a negative limit, so
// every `or`, such as a host on either end, failed with "not
// selective" in the middle of a paged search).
func TestUncappedOrCandidates(t *testing.T) {
	st := openTest(t, t.TempDir(), testConfig())
	defer st.Close()
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	recs := dayOfRecords(t, day, 1000)
	writeBatches(t, st, recs, 100)
	port, _ := flowindex.ByName("destination.port")
	src, _ := flowindex.ByName("source.port")
	p := int64(recs[0].Tuple.DstPort)
	l := flowindex.Any{flowindex.Term{Field: port, Value: flowindex.Value{N: p}}, flowindex.Term{Field: src, Value: flowindex.Value{N: p}}}
	ctx := context.Background()
	db, err := st.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.release()
	refs, err := st.candidates(ctx, db, l, flowindex.Hour(day), flowindex.Hour(day.Add(24*time.Hour)), math.MaxInt)
	if err != nil {
		t.Fatalf("or of two ports, uncapped: %v", err)
	}
	if len(refs) == 0 {
		t.Fatal("or of two ports, uncapped: no candidates")
	}
}

// searchIDs returns the sorted IDs of the records SearchRecords yields
// that match.
func searchIDs(t *testing.T, st *Store, from, to time.Time, l flowindex.Lookup, match func(*flow.Record) bool) []flow.ID {
	t.Helper()
	var out []flow.ID
	used, err := st.SearchRecords(context.Background(), from, to, l, func(r *flow.Record) error {
		if match(r) {
			out = append(out, r.ID)
		}
		return nil
	})
	if err != nil || !used {
		t.Fatalf("SearchRecords: used %v, %v", used, err)
	}
	return sortIDs(out)
}

// orderedIDs is searchIDs with SearchRecordsOrdered.
func orderedIDs(t *testing.T, st *Store, from, to time.Time, l flowindex.Lookup, match func(*flow.Record) bool) []flow.ID {
	t.Helper()
	var out []flow.ID
	used, err := st.SearchRecordsOrdered(context.Background(), from, to, l, func(r *flow.Record, _ int64) error {
		if match(r) {
			out = append(out, r.ID)
		}
		return nil
	})
	if err != nil || !used {
		t.Fatalf("SearchRecordsOrdered: used %v, %v", used, err)
	}
	return sortIDs(out)
}

// wantIDs returns the sorted IDs of the matching records.
func wantIDs(recs []flow.Record, match func(*flow.Record) bool) []flow.ID {
	var out []flow.ID
	for i := range recs {
		if match(&recs[i]) {
			out = append(out, recs[i].ID)
		}
	}
	return sortIDs(out)
}

func sortIDs(ids []flow.ID) []flow.ID {
	slices.SortFunc(ids, func(a, b flow.ID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}
