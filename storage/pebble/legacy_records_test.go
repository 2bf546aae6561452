package pebble

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// TestLegacyRecordValuesStillRead: records are stored in recordcodec's
// versioned format, and a store written by an earlier release (record
// values in the wire message, no header) still answers with the same
// records after its values are swapped back to that form and the store
// is reopened: no migration is needed.
func TestLegacyRecordValuesStillRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	ins := storagetest.Instances(storagetest.LoadFlows(t, storagetest.Capture), "sensor-a", 0, 3)
	b := &storage.Batch{SensorID: "sensor-a", Seq: 1}
	for _, in := range ins {
		b.Blocks = append(b.Blocks, in.Blocks...)
		b.Records = append(b.Records, in.Record)
	}
	if _, err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	from, to := time.Unix(0, 0), time.Now().Add(24*time.Hour)
	want := scanAll(t, s, from, to)
	if len(want) != len(ins) {
		t.Fatalf("scanned %d records, wrote %d", len(want), len(ins))
	}

	// Rewrite every current-format record value as the wire message.
	db, err := s.acquire()
	if err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	wb := db.NewBatch()
	var swapped int
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) < 2 || v[0] != 0xff || v[1] != recordcodec.Version {
			continue
		}
		var r flow.Record
		if err := plan.DecodeRecord(v, &r); err != nil {
			continue // a value of another kind that happens to start so
		}
		var pb tapirv1.FlowRecord
		legacy, err := proto.Marshal(tapirv1.FromRecord(&r, &pb))
		if err != nil {
			t.Fatal(err)
		}
		if err := wb.Set(bytes.Clone(it.Key()), legacy, nil); err != nil {
			t.Fatal(err)
		}
		swapped++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wb.Commit(nil); err != nil {
		t.Fatal(err)
	}
	s.release()
	if swapped < len(ins) {
		t.Fatalf("found %d current-format record values, want at least %d", swapped, len(ins))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, testConfig())
	defer s.Close()
	got := scanAll(t, s, from, to)
	if len(got) != len(want) {
		t.Fatalf("after the swap: %d records, want %d", len(got), len(want))
	}
	for i := range want {
		a, _ := plan.EncodeRecord(nil, &want[i])
		g, _ := plan.EncodeRecord(nil, &got[i])
		if !bytes.Equal(a, g) {
			t.Fatalf("record %s reads back differently from its legacy value", want[i].ID)
		}
	}
	for _, in := range ins {
		if _, err := s.LookupFlow(ctx, in.Record.CommunityID, time.Time{}, time.Time{}); err != nil {
			t.Fatalf("lookup %s after the swap: %v", in.Record.CommunityID, err)
		}
	}
}

func scanAll(t *testing.T, s *Store, from, to time.Time) []flow.Record {
	t.Helper()
	var out []flow.Record
	if err := s.ScanRecords(context.Background(), from, to, func(r *flow.Record) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
