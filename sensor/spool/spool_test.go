package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/tapir-sensor/tapir/segfile"
)

func payload(seq uint64, n int) []byte {
	return bytes.Repeat([]byte{byte(seq)}, n)
}

func readAll(t *testing.T, s *Spool, after uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	_, err := s.ReadAfter(after, 1<<30, func(seq uint64, p []byte) error {
		if !bytes.Equal(p, payload(seq, len(p))) {
			t.Fatalf("payload of %d corrupted", seq)
		}
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig("/x").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReadAckRestart(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 4096}
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 50 {
		seq, err := s.NextSeq()
		if err != nil {
			t.Fatal(err)
		}
		if seq != last+1 {
			t.Fatalf("seq %d after %d", seq, last)
		}
		last = seq
		if err := s.Append(seq, payload(seq, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, s, 0); len(got) != 50 || got[0] != 1 || got[49] != 50 {
		t.Fatalf("read %v", got)
	}
	if got := readAll(t, s, 40); len(got) != 10 || got[0] != 41 {
		t.Fatalf("read after 40: %v", got)
	}
	segsBefore := s.Stats().Segments
	if err := s.Ack(30); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Batches != 20 || st.Segments >= segsBefore {
		t.Fatalf("after ack 30: %+v (segments before %d)", st, segsBefore)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second close:", err)
	}

	s, err = Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Acked() != 30 {
		t.Fatalf("acked %d after restart", s.Acked())
	}
	if got := readAll(t, s, 0); len(got) != 20 || got[0] != 31 || got[19] != 50 {
		t.Fatalf("after restart read %v", got)
	}
	seq, _ := s.NextSeq()
	if seq <= 50 {
		t.Fatalf("seq %d repeats a used seq after restart", seq)
	}
}

func TestSeqSurvivesCrash(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 4096}
	s, _ := Open(cfg, nil)
	var last uint64
	for range 5 {
		last, _ = s.NextSeq() // allocated, never appended (batches lost in memory)
	}
	// Simulated crash: no Close.
	s2, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	seq, _ := s2.NextSeq()
	if seq <= last {
		t.Fatalf("seq %d reused after crash (last allocated %d)", seq, last)
	}
}

func TestTornTail(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 1 << 16}
	s, _ := Open(cfg, nil)
	for seq := uint64(1); seq <= 10; seq++ {
		if err := s.Append(seq, payload(seq, 100)); err != nil {
			t.Fatal(err)
		}
	}
	// Simulated crash: the process dies mid-write of record 10.
	segs, _ := filepath.Glob(filepath.Join(cfg.Dir, "seg-*.spool"))
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	fi, _ := os.Stat(segs[0])
	if err := os.Truncate(segs[0], fi.Size()-37); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := s2.Stats()
	if st.TornRecords != 1 || st.TruncatedBytes != uint64(headerLen+100-37) {
		t.Fatalf("recovery stats %+v", st)
	}
	if got := readAll(t, s2, 0); len(got) != 9 || got[8] != 9 {
		t.Fatalf("after recovery read %v", got)
	}
	// Appending after recovery continues cleanly.
	if err := s2.Append(11, payload(11, 100)); err != nil {
		t.Fatal(err)
	}
	s2.Close()

	// A corrupted byte in the middle of a record: that record is skipped,
	// counted as corrupt, and the intact records after it are kept.
	data, _ := os.ReadFile(segs[0])
	data[segfile.HeaderSize+2*(headerLen+100)+headerLen+5] ^= 0xff // payload of the 3rd record
	if err := os.WriteFile(segs[0], data, 0o640); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	// Segment 1 keeps records 1-2 and 4-9; 11 went to a new segment.
	want := []uint64{1, 2, 4, 5, 6, 7, 8, 9, 11}
	if got := readAll(t, s3, 0); !slices.Equal(got, want) {
		t.Fatalf("after corruption read %v, want %v", got, want)
	}
	if st := s3.Stats(); st.CorruptRecords != 1 || st.CorruptBytes != headerLen+100 || st.TornRecords != 0 {
		t.Fatalf("corruption not counted: %+v", st)
	}
}

// TestCorruptRecordSkippedOnRead: a record corrupted after Open indexed
// it is skipped by ReadAfter, counted, and the records after it read.
func TestCorruptRecordSkippedOnRead(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 1 << 16}
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for seq := uint64(1); seq <= 3; seq++ {
		if err := s.Append(seq, payload(seq, 100)); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(cfg.Dir, "seg-*.spool"))
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xee}, int64(segfile.HeaderSize+headerLen+100+headerLen+7)); err != nil { // record 2
		t.Fatal(err)
	}
	f.Close()
	if got := readAll(t, s, 0); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("read %v, want [1 3]", got)
	}
	if st := s.Stats(); st.CorruptRecords != 1 {
		t.Fatalf("corrupt record not counted: %+v", st)
	}
}

// TestEpoch: a new spool draws a random non-zero epoch that survives
// restarts; a recreated spool gets another; a version-1 state file (no
// epoch) keeps its watermark and gets an epoch.
func TestEpoch(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 4096}
	s, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Epoch()
	if e == 0 {
		t.Fatal("epoch 0 for a new spool")
	}
	if err := s.Ack(7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Epoch() != e || s2.Acked() != 7 {
		t.Fatalf("after restart epoch %d acked %d, want %d 7", s2.Epoch(), s2.Acked(), e)
	}
	s2.Close()

	other, err := Open(Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Epoch() == e || other.Epoch() == 0 {
		t.Fatalf("a fresh spool reused epoch %d", e)
	}
	other.Close()

	// A version-1 state file: acked 5, reserved 9.
	v1 := make([]byte, stateLenV1)
	copy(v1, stateMagicV1)
	binary.LittleEndian.PutUint64(v1[8:], 5)
	binary.LittleEndian.PutUint64(v1[16:], 9)
	binary.LittleEndian.PutUint32(v1[24:], crc32.Checksum(v1[:24], castagnoli))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), v1, 0o640); err != nil {
		t.Fatal(err)
	}
	old, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if seq, _ := old.NextSeq(); old.Epoch() == 0 || old.Acked() != 5 || seq != 10 {
		t.Fatalf("v1 state: epoch %d acked %d next seq %d", old.Epoch(), old.Acked(), seq)
	}
}

func TestCapDropsOldest(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 3 * 4096, SegmentBytes: 4096}
	s, _ := Open(cfg, nil)
	defer s.Close()
	const n, size = 200, 500
	for seq := uint64(1); seq <= n; seq++ {
		if err := s.Append(seq, payload(seq, size)); err != nil {
			t.Fatal(err)
		}
		if seq == 5 {
			if err := s.Ack(5); err != nil { // acked batches are not counted as dropped
				t.Fatal(err)
			}
		}
	}
	st := s.Stats()
	if st.Bytes > cfg.MaxBytes {
		t.Fatalf("spool %d bytes over its cap %d", st.Bytes, cfg.MaxBytes)
	}
	got := readAll(t, s, 0)
	if len(got) == 0 || got[len(got)-1] != n {
		t.Fatalf("newest batches missing: %v", got)
	}
	// Every unacked batch is either still held or counted as dropped.
	if want := uint64(n - 5 - len(got)); st.DroppedBatches != want || st.DroppedBytes != want*size {
		t.Fatalf("dropped %d batches / %d bytes, want %d / %d (held %d)", st.DroppedBatches, st.DroppedBytes, want, want*size, len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("hole in the kept batches: %v", got)
		}
	}
}

// TestFilesPrivate: spooled batches hold packets, so the spool's directory
// and files are private to the sensor's user whatever the umask.
func TestFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		seq, err := s.NextSeq()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(seq, payload(seq, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("only %d files in the spool", files)
	}
}
