package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// createLegacyMergerStore creates in dir an empty store as releases
// before merged flow refs did: the prefix comparer, Pebble's default
// merger.
func createLegacyMergerStore(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Comparer: prefixComparer})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// createSaltedRefStore creates an empty store in dir as releases with
// merged flow refs but salted flow ID rows did (merger tapir.flowref.v1).
func createSaltedRefStore(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Comparer: prefixComparer, Merger: refMerger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestContractSaltedFlowIDs: a store created with merged flow refs and
// salted flow ID rows keeps both, and meets the whole storage contract.
func TestContractSaltedFlowIDs(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.BlockStore {
		dir := t.TempDir()
		createSaltedRefStore(t, dir)
		s := openTest(t, dir, testConfig())
		if !s.merges || s.orderedFlowIDs {
			t.Fatalf("salted store opened with merges=%v orderedFlowIDs=%v", s.merges, s.orderedFlowIDs)
		}
		return s
	})
}

// TestFlowIDRowsInIDOrder: a new store writes its flow ID rows in flow
// ID order (zero salt byte), so they sort by first-seen time, and short
// Community ID rows; a store created with salted rows keeps writing
// salted ones and full Community ID rows. Both find every
// flow by flow ID and Community ID across LSM levels and after a reopen.
func TestFlowIDRowsInIDOrder(t *testing.T) {
	for _, salted := range []bool{false, true} {
		dir := t.TempDir()
		if salted {
			createSaltedRefStore(t, dir)
		}
		s := openTest(t, dir, testConfig())
		if s.orderedFlowIDs == salted {
			t.Fatalf("salted=%v: orderedFlowIDs=%v", salted, s.orderedFlowIDs)
		}
		s1, s2 := lsmStore(t, s)
		checkRetrieval(t, s, s1, s2)
		var ids []flow.ID
		nonzeroSalt := 0
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(rowkey.TableFlowID)}, UpperBound: []byte{byte(rowkey.TableFlowID) + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if len(k) != 1+rowkey.FlowIDKeyLen {
				t.Fatalf("flow ID row key %x", k)
			}
			if k[1] != 0 {
				nonzeroSalt++
			}
			ids = append(ids, flow.ID(k[2:]))
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if want := len(s1) + len(s2); len(ids) != want {
			t.Fatalf("salted=%v: %d flow ID rows, want %d", salted, len(ids), want)
		}
		checkKeyOnlyCommunityRows(t, s, len(ids))
		sorted := slices.IsSortedFunc(ids, func(a, b flow.ID) int { return bytes.Compare(a[:], b[:]) })
		if !salted && (nonzeroSalt != 0 || !sorted) {
			t.Errorf("new store: %d rows salted, in ID order %v", nonzeroSalt, sorted)
		}
		if salted && (nonzeroSalt == 0 || sorted) {
			t.Errorf("salted store: %d of %d rows salted, in ID order %v", nonzeroSalt, len(ids), sorted)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, dir, testConfig())
		if s.orderedFlowIDs == salted {
			t.Fatalf("salted=%v: reopened with orderedFlowIDs=%v", salted, s.orderedFlowIDs)
		}
		checkRetrieval(t, s, s1, s2)
		for _, in := range append(append([]*storagetest.Instance{}, s1...), s2...) {
			refs, err := s.LookupFlow(ctx, in.Record.ID.String(), time.Time{}, time.Time{})
			if err != nil || len(refs) != 1 || refs[0].FlowID != in.Record.ID {
				t.Fatalf("salted=%v: flow %s: %v %v", salted, in.Record.ID, refs, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnknownMergerRefused: a store whose merger this release does not
// know (a later layout) is refused, not opened and written in another.
func TestUnknownMergerRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Comparer: prefixComparer, Merger: &pebble.Merger{Name: "tapir.flowref.v9", Merge: newRefMerge}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testConfig(), nil, nil); !errors.Is(err, ErrLayout) {
		t.Fatalf("open a store of merger tapir.flowref.v9: %v, want ErrLayout", err)
	}
}

// TestContractLegacyMerger: a store created before merged flow refs
// keeps Pebble's default merger and its read-before-write path, and
// meets the whole storage contract.
func TestContractLegacyMerger(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.BlockStore {
		dir := t.TempDir()
		createLegacyMergerStore(t, dir)
		s := openTest(t, dir, testConfig())
		if s.merges || !s.prefixSeek {
			t.Fatalf("legacy store opened with merges=%v prefixSeek=%v", s.merges, s.prefixSeek)
		}
		return s
	})
}

// TestNewStoreWritesWithoutReading: a new store writes flow refs as
// merge operands and short key-only Community ID rows, reading neither first
// (a write reads only the blocks and records it may replace); every flow
// is still found by Community ID and flow ID with its blocks, across LSM
// levels and after a reopen. A legacy store also reads every flow ID row.
func TestNewStoreWritesWithoutReading(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	if !s.merges {
		t.Fatal("a new store does not merge flow refs")
	}
	s1, s2 := lsmStore(t, s)
	blocks, flows := 0, len(s1)+len(s2)
	for _, in := range append(append([]*storagetest.Instance{}, s1...), s2...) {
		blocks += len(in.Blocks)
	}
	if got, want := s.writeReads.Load(), uint64(blocks+flows); got != want {
		t.Errorf("writes read %d rows, want %d (one per block and record, none per flow ref)", got, want)
	}
	checkRetrieval(t, s, s1, s2)
	checkKeyOnlyCommunityRows(t, s, flows)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, testConfig())
	if !s.merges {
		t.Fatal("reopened store lost its merger")
	}
	checkRetrieval(t, s, s1, s2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	legacy := t.TempDir()
	createLegacyMergerStore(t, legacy)
	s = openTest(t, legacy, testConfig())
	defer s.Close()
	s1, s2 = lsmStore(t, s)
	if got, want := s.writeReads.Load(), uint64(blocks+2*flows); got != want {
		t.Errorf("legacy store: writes read %d rows, want %d (blocks, records and flow ID rows)", got, want)
	}
	checkRetrieval(t, s, s1, s2)
}

// checkKeyOnlyCommunityRows checks that the store holds n Community ID
// rows, all without a value.
func checkKeyOnlyCommunityRows(t *testing.T, s *Store, n int) {
	t.Helper()
	full, short := n, 0
	if s.orderedFlowIDs {
		full, short = 0, n
	}
	checkKeyOnlyRows(t, s, rowkey.TableCommunity, full)
	checkKeyOnlyRows(t, s, rowkey.TableCommunityHash, short)
}

// checkKeyOnlyRows checks that table holds n rows, none with a value.
func checkKeyOnlyRows(t *testing.T, s *Store, table rowkey.Table, n int) {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(table)}, UpperBound: []byte{byte(table) + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	rows := 0
	for it.First(); it.Valid(); it.Next() {
		rows++
		if len(it.Value()) != 0 {
			t.Fatalf("Community ID row %x holds %d bytes", it.Key(), len(it.Value()))
		}
	}
	if rows != n {
		t.Errorf("%d Community ID rows in table %q, want %d", rows, table, n)
	}
}

// TestLateFirstReportKeepsNewestSegment: a late copy of a flow's first
// report never replaces a later report, before and after compactions;
// an equal segment replaces.
func TestLateFirstReportKeepsNewestSegment(t *testing.T) {
	s := openTest(t, t.TempDir(), testConfig())
	defer s.Close()
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	in := storagetest.NewInstance(&flows[0], "sensor-a", 1, 0, 4)
	first := in.Record
	first.Segment, first.End = 0, first.Start.Add(time.Second)
	later := first
	later.Segment, later.End, later.Reason = 2, first.Start.Add(2*time.Second), flow.ReasonFIN
	if s.layout.IsLong(&later) {
		t.Fatal("test flow is long: pick a shorter one")
	}
	write := func(seq uint64, r flow.Record) {
		t.Helper()
		if ok, err := s.Write(ctx, &storage.Batch{SensorID: "sensor-a", Seq: seq, Records: []flow.Record{r}}); !ok || err != nil {
			t.Fatalf("write segment %d: %v %v", r.Segment, ok, err)
		}
	}
	check := func(what string, seg uint32, end time.Time) {
		t.Helper()
		var got []flow.Record
		if err := s.ScanRecords(ctx, first.Start, later.End, func(r *flow.Record) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Segment != seg || !got[0].End.Equal(end) {
			t.Fatalf("%s: records %+v, want one of segment %d ending %v", what, got, seg, end)
		}
	}
	write(1, first)
	write(2, later)
	write(3, first) // a late copy of the first report
	check("late first report", 2, later.End)
	if err := s.db.Compact([]byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	check("after compaction", 2, later.End)
	write(4, first)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("late copy over a compacted row", 2, later.End)
	again := later
	again.End = later.End.Add(time.Millisecond)
	write(5, again)
	check("same segment again", 2, again.End)
}

// TestRefMergerRefusesOtherTables: a merge operand in a table that never
// gets one is reported as corruption, not folded, and a malformed flow
// ref is refused when it must be merged.
func TestRefMergerRefusesOtherTables(t *testing.T) {
	for _, tab := range []rowkey.Table{rowkey.TableBlocks, rowkey.TableMeta, rowkey.TableSeq, rowkey.TableRecords, rowkey.TableCommunity} {
		if _, err := newRefMerge([]byte{byte(tab), 1, 2}, []byte{1}); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("table %q: %v, want ErrCorrupt", tab, err)
		}
	}
	good := rowkey.AppendRef(nil, &storage.FlowRef{FlowID: flow.ID{1}, First: time.Unix(1, 0), Last: time.Unix(2, 0)})
	m, err := newRefMerge(plan.FlowIDKey(flow.ID{1}), good)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.MergeNewer([]byte{0xff}); err == nil {
		t.Error("a malformed flow ref operand merged")
	}
}

// TestCommunityRowWithoutFlowRow: a key-only Community ID row (short in
// a new store, full in one with salted flow ID rows) whose flow ID row is
// missing is corruption, named as such by the lookup.
func TestCommunityRowWithoutFlowRow(t *testing.T) {
	cid := flow.CommunityID(0, flow.Tuple{Src: flow.AddrFrom4([4]byte{10, 0, 0, 1}), Dst: flow.AddrFrom4([4]byte{10, 0, 0, 2}),
		SrcPort: 40000, DstPort: 443, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4})
	id := flow.NewID(time.Unix(100, 0), 1, 1)
	for _, salted := range []bool{false, true} {
		dir := t.TempDir()
		key := plan.CommunityHashKey
		if salted {
			createSaltedRefStore(t, dir)
			key = plan.CommunityKey
		}
		s := openTest(t, dir, testConfig())
		ck, ok := key(cid, id)
		if !ok {
			t.Fatalf("Community ID %q not parsed", cid)
		}
		if err := s.db.Set(ck, nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupFlow(ctx, cid, time.Time{}, time.Time{}); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("salted=%v: lookup: %v, want ErrCorrupt", salted, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShortCommunityRowOfAnotherID: a short Community ID row keeps only
// the first bytes of the hash; a flow whose Community ID shares them but
// differs is not returned for the one looked up.
func TestShortCommunityRowOfAnotherID(t *testing.T) {
	s := openTest(t, t.TempDir(), testConfig())
	defer s.Close()
	s1, s2 := lsmStore(t, s)
	x, y := s1[0], s1[1]
	if x.Record.CommunityID == y.Record.CommunityID {
		t.Fatal("two flows of one Community ID")
	}
	// A row under x's hash prefix pointing at y, as another Community ID
	// sharing x's first 8 bytes would write.
	xh, ok := rowkey.ParseCommunityID(x.Record.CommunityID)
	if !ok {
		t.Fatalf("Community ID %q", x.Record.CommunityID)
	}
	k := rowkey.TableKey(rowkey.TableCommunityHash, rowkey.AppendCommunityHashKey(nil, &xh, y.Record.ID))
	if err := s.db.Set(k, nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	refs, err := s.LookupFlow(ctx, x.Record.CommunityID, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, in := range append(append([]*storagetest.Instance{}, s1...), s2...) {
		if in.Record.CommunityID == x.Record.CommunityID {
			want++
		}
	}
	for _, r := range refs {
		if r.CommunityID != x.Record.CommunityID {
			t.Errorf("lookup of %s returned flow %s of %s", x.Record.CommunityID, r.FlowID, r.CommunityID)
		}
	}
	if len(refs) != want {
		t.Errorf("lookup of %s: %d refs, want %d", x.Record.CommunityID, len(refs), want)
	}
}

// TestRefMergeWidens: flow ref operands fold into the widest span in
// any order, and a single operand passes through byte for byte.
func TestRefMergeWidens(t *testing.T) {
	id := flow.ID{7}
	refs := []storage.FlowRef{
		{FlowID: id, First: time.Unix(10, 0), Last: time.Unix(20, 0)},
		{FlowID: id, First: time.Unix(5, 0), Last: time.Unix(12, 0), CommunityID: "1:abc", SensorID: "s"},
		{FlowID: id, First: time.Unix(15, 0), Last: time.Unix(30, 0)},
	}
	key := plan.FlowIDKey(id)
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		m, err := newRefMerge(key, rowkey.AppendRef(nil, &refs[order[0]]))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range order[1:] {
			if err := m.MergeOlder(rowkey.AppendRef(nil, &refs[i])); err != nil {
				t.Fatal(err)
			}
		}
		v, _, err := m.Finish(true)
		if err != nil {
			t.Fatal(err)
		}
		var got storage.FlowRef
		if err := rowkey.DecodeRef(v, &got); err != nil {
			t.Fatal(err)
		}
		if !got.First.Equal(time.Unix(5, 0)) || !got.Last.Equal(time.Unix(30, 0)) || got.CommunityID != "1:abc" || got.SensorID != "s" {
			t.Errorf("order %v: merged %+v", order, got)
		}
	}
	one := rowkey.AppendRef(nil, &refs[0])
	m, err := newRefMerge(key, one)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := m.Finish(true); err != nil || !bytes.Equal(v, one) {
		t.Errorf("single operand: %x, %v; want %x", v, err, one)
	}
}

// TestVerifyStoresOfBothMergers: Verify reads the sstables of a store
// with merged flow refs and of one created before them without reporting
// damage (an sstable names the merger of its store, which the reader
// must be given).
func TestVerifyStoresOfBothMergers(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		dir := t.TempDir()
		if legacy {
			createLegacyMergerStore(t, dir)
		}
		verifyStore(t, dir, fmt.Sprintf("legacy=%v", legacy))
	}
	dir := t.TempDir()
	createSaltedRefStore(t, dir)
	verifyStore(t, dir, "salted flow ID rows")
}

// verifyStore fills the store in dir over several LSM levels and checks
// that Verify reads every sstable without error.
func verifyStore(t *testing.T, dir, name string) {
	t.Helper()
	s := openTest(t, dir, testConfig())
	lsmStore(t, s)
	checks, err := s.Verify(ctx)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(checks) < 2 {
		t.Fatalf("%s: %d sstables checked", name, len(checks))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
