package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

func TestWALEncodeScanRoundTrip(t *testing.T) {
	var recs []walRecord
	for i := 0; i < 40; i++ {
		recs = append(recs, walRecord{data: bytes.Repeat([]byte{byte(i + 1)}, 100+i*4000)})
	}
	b := encodeWAL(recs, 7)
	sc := scanWAL(b, 7)
	if len(sc.damage) != 0 || len(sc.records) != len(recs) {
		t.Fatalf("%d records, damage %v; want %d, none", len(sc.records), sc.damage, len(recs))
	}
	for i := range recs {
		if !bytes.Equal(sc.records[i].data, recs[i].data) {
			t.Fatalf("record %d differs", i)
		}
	}
	// Another log's chunks (a recycled file) end the log.
	if sc := scanWAL(b, 8); len(sc.records) != 0 || len(sc.damage) != 0 {
		t.Errorf("log 8 read %d records of log 7, damage %v", len(sc.records), sc.damage)
	}
	// A torn tail is no damage, but it is reported as the tail.
	if sc := scanWAL(b[:len(b)-50], 7); len(sc.damage) != 0 || len(sc.records) != len(recs)-1 || sc.tail == nil {
		t.Errorf("torn tail: %d records, damage %v, tail %v", len(sc.records), sc.damage, sc.tail)
	}
	if sc.tail != nil {
		t.Errorf("a clean log has a tail: %+v", sc.tail)
	}
	// A flipped byte in the middle is damage, and the records after it
	// are still read.
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x40
	sc = scanWAL(c, 7)
	if len(sc.damage) != 1 || len(sc.records) != len(recs)-1 {
		t.Errorf("flipped byte: %d records, damage %v; want %d and one damaged stretch", len(sc.records), sc.damage, len(recs)-1)
	}
}

// TestWALDamageStrictAndSalvage writes batches, flips a byte in the
// middle of the store's log, and checks that Open refuses the store
// (naming the file) under the strict policy, and that salvage keeps every
// batch but the damaged one.
func TestWALDamageStrictAndSalvage(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	dir := t.TempDir()
	cfg := testConfig()
	cfg.MemTableBytes = 64 << 20 // everything stays in the log
	s := openTest(t, dir, cfg)
	var batches []*storage.Batch
	for i := 0; i < 12; i++ {
		b := batchOf(fmt.Sprintf("sensor-%d", i%3), uint64(i+1), storagetest.Instances(flows, fmt.Sprintf("sensor-%d", i%3), time.Duration(i)*time.Hour, 2))
		if ok, err := s.Write(ctx, b); !ok || err != nil {
			t.Fatal(ok, err)
		}
		batches = append(batches, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wals, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var biggest string
	var size int64
	for _, w := range wals {
		if st, _ := os.Stat(w); st.Size() > size {
			biggest, size = w, st.Size()
		}
	}
	b, _ := os.ReadFile(biggest)
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(biggest, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, cfg, nil, nil)
	if !errors.Is(err, ErrWALDamaged) || !errors.Is(err, storage.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(filepath.Base(biggest))) {
		t.Fatalf("open of a damaged log: %v; want ErrWALDamaged naming %s", err, filepath.Base(biggest))
	}
	t.Logf("strict: %v", err)
	cfg.WALRecovery = WALSalvage
	s = openTest(t, dir, cfg)
	defer s.Close()
	complete := 0
	for _, b := range batches {
		if stored(t, s, b) == len(b.Blocks) {
			complete++
		}
	}
	t.Logf("%d of %d batches complete after salvage", complete, len(batches))
	if complete < len(batches)-2 || complete == len(batches) {
		t.Errorf("%d of %d batches complete after salvage; want all but the damaged one", complete, len(batches))
	}
	if copies, _ := filepath.Glob(filepath.Join(dir, "damaged-wal", "*")); len(copies) != 1 {
		t.Errorf("copies of the damaged log: %v", copies)
	}
}
