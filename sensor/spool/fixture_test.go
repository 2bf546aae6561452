package spool

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeFixture rewrites testdata/spool-v1. Only for a deliberate format
// change: the fixture was written by the spool as it was before its
// segment files moved onto package segfile, and the point of the test is
// that today's spool still reads it.
var writeFixture = flag.Bool("write-fixture", false, "rewrite testdata/spool-v1")

const (
	fixtureDir   = "testdata/spool-v1"
	fixtureEpoch = 0x7a91_e5c3_0b2d_4f68
	fixtureAcked = 10
	fixtureLast  = 40
)

// fixturePayload is the batch spooled under seq in the fixture.
func fixturePayload(seq uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "batch %d;", seq), 30+int(seq)%7)
}

// makeFixture spools batches 1..40 in 4 KiB segments, acks 10 and
// closes.
func makeFixture(t *testing.T) {
	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{Dir: fixtureDir, MaxBytes: 1 << 20, SegmentBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.epoch = fixtureEpoch
	for seq := uint64(1); seq <= fixtureLast; seq++ {
		if err := s.Append(seq, fixturePayload(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(fixtureAcked); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyFixture copies the fixture spool into a fresh directory (Open
// may truncate or delete segments).
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.CopyFS(dir, os.DirFS(fixtureDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReadFixtureSpool opens a spool written by the spool code as it was
// before package segfile (format TSPL 1, state TSST 2) and reads back
// every unacked batch, its epoch and its watermark; a torn tail cut into
// its last segment is truncated and counted.
func TestReadFixtureSpool(t *testing.T) {
	if *writeFixture {
		makeFixture(t)
	}
	for _, cut := range []int64{0, 5} {
		dir := copyFixture(t)
		segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.spool"))
		if len(segs) < 3 {
			t.Fatalf("fixture has %d segments", len(segs))
		}
		if cut > 0 {
			fi, err := os.Stat(segs[len(segs)-1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(segs[len(segs)-1], fi.Size()-cut); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096}, nil)
		if err != nil {
			t.Fatal(err)
		}
		last := uint64(fixtureLast)
		if cut > 0 {
			last-- // the torn batch
		}
		var got []uint64
		_, err = s.ReadAfter(0, 1<<30, func(seq uint64, p []byte) error {
			if !bytes.Equal(p, fixturePayload(seq)) {
				t.Errorf("cut %d: batch %d reads %q", cut, seq, p)
			}
			got = append(got, seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for q := uint64(fixtureAcked + 1); q <= last; q++ {
			want = append(want, q)
		}
		if !slices.Equal(got, want) {
			t.Errorf("cut %d: read %v, want %v", cut, got, want)
		}
		st := s.Stats()
		if s.Epoch() != fixtureEpoch || s.Acked() != fixtureAcked || st.Batches != int64(len(want)) || st.CorruptRecords != 0 {
			t.Errorf("cut %d: epoch %x acked %d stats %+v", cut, s.Epoch(), s.Acked(), st)
		}
		wantTorn := uint64(0)
		if cut > 0 {
			wantTorn = 1
		}
		if st.TornRecords != wantTorn || (cut > 0 && st.TruncatedBytes != uint64(headerLen+len(fixturePayload(fixtureLast)))-uint64(cut)) {
			t.Errorf("cut %d: torn %d truncated %d", cut, st.TornRecords, st.TruncatedBytes)
		}
		if seq, err := s.NextSeq(); err != nil || seq <= fixtureLast {
			t.Errorf("cut %d: next seq %d, %v", cut, seq, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
