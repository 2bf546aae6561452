package segfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// Two formats shaped like the two users: length-only framing with the
// validity inside the body (block segments), and CRC plus an 8-byte
// sequence prefix (the spool).
var (
	plainFormat = Format{Magic: "TPLN", Version: 1, MaxBody: 1 << 20}
	crcFormat   = Format{Magic: "TCRC", Version: 2, CRC: true, Prefix: 8, MaxBody: 1 << 20}
)

// testRecord is a record as the tests write it: the body repeats its
// sequence number's low byte, and plain-format bodies start with "BODY"
// so that a checker can tell one.
func testRecord(f Format, seq uint64, n int) (prefix, body []byte) {
	if f.Prefix > 0 {
		prefix = binary.LittleEndian.AppendUint64(nil, seq)
	}
	body = bytes.Repeat([]byte{byte(seq)}, n)
	if !f.CRC && n >= 4 {
		copy(body, "BODY")
	}
	return prefix, body
}

// testScanner scans a format: plain-format records must start with BODY
// and be at least 4 bytes; crc-format seqs must increase.
func testScanner(f Format) *Scanner {
	s := &Scanner{Format: f}
	if !f.CRC {
		s.Plausible = func(rec []byte) bool { return bytes.HasPrefix(rec, []byte("BODY")) }
		s.Check = func(r Record, _ bool) error {
			if !bytes.HasPrefix(r.Body, []byte("BODY")) {
				return errors.New("no BODY")
			}
			return nil
		}
	}
	return s
}

func newTestWriter(t *testing.T, dir string, f Format, segSize int64, buf int) *Writer {
	t.Helper()
	n := 0
	w, err := NewWriter(WriterConfig{Dir: dir, Format: f, SegmentSize: segSize, BufferSize: buf,
		Name: func([]byte) string { n++; return fmt.Sprintf("t-%d.seg", n) }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type scanned struct {
	recs   []Record
	damage []Damage
}

func scanFile(t *testing.T, s *Scanner, data []byte) scanned {
	t.Helper()
	var out scanned
	err := s.Scan(data, func(r Record) error {
		out.recs = append(out.recs, r)
		return nil
	}, func(d Damage) { out.damage = append(out.damage, d) })
	if err != nil {
		t.Fatal(err)
	}
	checkCoverage(t, data, out)
	return out
}

// checkCoverage: records and damage cover the data after the header
// exactly, in order, and only the last stretch may be a tail.
func checkCoverage(t *testing.T, data []byte, s scanned) {
	t.Helper()
	type span struct {
		off, n int64
		tail   bool
	}
	var spans []span
	for _, r := range s.recs {
		spans = append(spans, span{r.Off, r.Size, false})
	}
	for _, d := range s.damage {
		spans = append(spans, span{d.Off, d.Len, d.Tail})
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.off - b.off) })
	off := int64(HeaderSize)
	for i, sp := range spans {
		if sp.off != off || sp.n <= 0 {
			t.Fatalf("stretch %d at %d (+%d), want at %d", i, sp.off, sp.n, off)
		}
		if sp.tail && i != len(spans)-1 {
			t.Fatalf("tail at %d is not last", sp.off)
		}
		off += sp.n
	}
	if off != int64(len(data)) {
		t.Fatalf("stretches end at %d of %d", off, len(data))
	}
}

// TestWriterRotatesAndScans writes records of many sizes to small
// segments of both formats, unbuffered and buffered, and reads them back
// through List and Scan at the positions Append returned.
func TestWriterRotatesAndScans(t *testing.T) {
	for _, f := range []Format{plainFormat, crcFormat} {
		for _, buf := range []int{0, 4096} {
			t.Run(fmt.Sprintf("%s/buf%d", f.Magic, buf), func(t *testing.T) {
				dir := t.TempDir()
				const segSize = 4096
				w := newTestWriter(t, dir, f, segSize, buf)
				var pos []Pos
				for seq := uint64(1); seq <= 60; seq++ {
					p, err := w.Append(testRecord(f, seq, int(seq*37%900)+4))
					if err != nil {
						t.Fatal(err)
					}
					pos = append(pos, p)
				}
				big, err := w.Append(testRecord(f, 61, 3*segSize)) // a segment of its own
				if err != nil {
					t.Fatal(err)
				}
				pos = append(pos, big)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal("second Close:", err)
				}
				if _, err := w.Append(testRecord(f, 62, 10)); !errors.Is(err, ErrClosed) {
					t.Fatalf("Append after Close: %v", err)
				}
				files, err := List(dir, "t-", ".seg")
				if err != nil {
					t.Fatal(err)
				}
				st := w.Stats()
				if st.Records != 61 || int(st.Segments) != len(files) || len(files) < 5 {
					t.Fatalf("stats %+v, %d files", st, len(files))
				}
				var total int64
				i := 0
				for _, name := range files {
					data, err := os.ReadFile(name)
					if err != nil {
						t.Fatal(err)
					}
					total += int64(len(data))
					got := scanFile(t, testScanner(f), data)
					if len(got.damage) > 0 {
						t.Fatalf("%s: damage %v", name, got.damage)
					}
					if len(data) > segSize && len(got.recs) != 1 {
						t.Fatalf("%s: %d bytes in %d records, limit %d", name, len(data), len(got.recs), segSize)
					}
					for _, r := range got.recs {
						seq := uint64(i + 1)
						wantPrefix, wantBody := testRecord(f, seq, len(r.Body))
						if pos[i].Path != name || pos[i].Off != r.Off || pos[i].Size != r.Size ||
							!bytes.Equal(r.Prefix, wantPrefix) || !bytes.Equal(r.Body, wantBody) {
							t.Fatalf("record %d: %+v at %+v", i, r.Off, pos[i])
						}
						i++
					}
				}
				if i != 61 || uint64(total) != st.Bytes {
					t.Fatalf("read %d records, %d bytes on disk; stats %+v", i, total, st)
				}
			})
		}
	}
}

// TestWriterBuffering: a buffered writer holds records until Flush; an
// unbuffered one writes each at once.
func TestWriterBuffering(t *testing.T) {
	for _, buf := range []int{0, 1 << 16} {
		dir := t.TempDir()
		w := newTestWriter(t, dir, crcFormat, 1<<20, buf)
		p, err := w.Append(testRecord(crcFormat, 1, 100))
		if err != nil {
			t.Fatal(err)
		}
		size := func() int64 {
			fi, err := os.Stat(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
		want := p.End()
		if buf > 0 {
			want = HeaderSize
		}
		if got := size(); got != want {
			t.Fatalf("buffer %d: %d bytes on disk before Flush, want %d", buf, got, want)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if got := size(); got != p.End() {
			t.Fatalf("buffer %d: %d bytes on disk after Sync, want %d", buf, got, p.End())
		}
		if w.Active() != p.Path {
			t.Fatalf("active %q", w.Active())
		}
		w.Abandon()
		if w.Active() != "" {
			t.Fatal("still active after Abandon")
		}
		p2, err := w.Append(testRecord(crcFormat, 2, 100))
		if err != nil || p2.Path == p.Path || p2.Off != HeaderSize {
			t.Fatalf("after Abandon: %+v %v", p2, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriterRefuses: bodies over MaxBody and prefixes of the wrong size.
func TestWriterRefuses(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), crcFormat, 1<<20, 0)
	defer w.Close()
	if _, err := w.Append(make([]byte, 8), make([]byte, crcFormat.MaxBody+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
	if _, err := w.Append(nil, []byte("x")); err == nil {
		t.Fatal("missing prefix accepted")
	}
	for _, c := range []WriterConfig{{}, {Dir: "x"}, {Dir: "x", SegmentSize: 100}, {Dir: "x", SegmentSize: 100, Name: func([]byte) string { return "" }}} {
		if c.Validate() == nil {
			t.Errorf("config %+v validates", c)
		}
	}
}

// TestFilesPrivate: segments hold packets; the directory and files are
// private to the writer's user whatever the umask.
func TestFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "segs")
	w := newTestWriter(t, dir, plainFormat, 1<<20, 0)
	p, err := w.Append(testRecord(plainFormat, 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, p.Path: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// writeOne returns one segment of n records of both formats' shape.
func writeOne(t *testing.T, f Format, n int) ([]byte, []Pos) {
	t.Helper()
	w := newTestWriter(t, t.TempDir(), f, 1<<30, 0)
	var pos []Pos
	for seq := uint64(1); seq <= uint64(n); seq++ {
		p, err := w.Append(testRecord(f, seq, 40+int(seq)*3))
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pos[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	return data, pos
}

// TestScanTornTail cuts a segment at every offset, as a crash mid-write
// would: the records before the cut are read, and a cut inside a record
// is one tail of the cut record's bytes, ErrShort.
func TestScanTornTail(t *testing.T) {
	for _, f := range []Format{plainFormat, crcFormat} {
		data, pos := writeOne(t, f, 6)
		for cut := HeaderSize; cut <= len(data); cut++ {
			got := scanFile(t, testScanner(f), data[:cut])
			complete := 0
			for _, p := range pos {
				if p.End() <= int64(cut) {
					complete++
				}
			}
			if len(got.recs) != complete {
				t.Fatalf("%s cut %d: %d records, want %d", f.Magic, cut, len(got.recs), complete)
			}
			atBoundary := complete == 0 && cut == HeaderSize || complete > 0 && pos[complete-1].End() == int64(cut)
			if atBoundary != (len(got.damage) == 0) {
				t.Fatalf("%s cut %d: damage %v", f.Magic, cut, got.damage)
			}
			if !atBoundary {
				d := got.damage[0]
				if len(got.damage) != 1 || !d.Tail || !errors.Is(d.Err, ErrShort) || d.Off != pos[complete].Off {
					t.Fatalf("%s cut %d: damage %+v", f.Magic, cut, got.damage)
				}
			}
		}
	}
}

// TestScanSkipsDamage flips bytes of a middle record: it alone is lost,
// reported as one skipped stretch of its size, and the records after it
// read. The same damage in the last record is a tail.
func TestScanSkipsDamage(t *testing.T) {
	for _, f := range []Format{plainFormat, crcFormat} {
		data, pos := writeOne(t, f, 6)
		framing := int64(f.RecordSize(0))
		for name, at := range map[string]int64{
			"length": pos[2].Off + 1,
			"body":   pos[2].End() - 3,
			"start":  pos[2].Off + framing, // the CRC, or the checker's BODY
		} {
			c := slices.Clone(data)
			c[at] ^= 0x5a
			got := scanFile(t, testScanner(f), c)
			if f.CRC == false && name == "body" {
				// Without a CRC the framing cannot see it: the caller's
				// record checks do (as block.Decode does).
				if len(got.recs) != 6 || len(got.damage) != 0 {
					t.Fatalf("%s %s: %d records, damage %v", f.Magic, name, len(got.recs), got.damage)
				}
				continue
			}
			if len(got.recs) != 5 || len(got.damage) != 1 {
				t.Fatalf("%s %s: %d records, damage %v", f.Magic, name, len(got.recs), got.damage)
			}
			d := got.damage[0]
			if d.Tail || d.Off != pos[2].Off || d.Len != pos[2].Size {
				t.Fatalf("%s %s: damage %+v, record at %+v", f.Magic, name, d, pos[2])
			}
			// The same in the last record: a tail.
			c = slices.Clone(data)
			c[at-pos[2].Off+pos[5].Off] ^= 0x5a
			got = scanFile(t, testScanner(f), c)
			if len(got.recs) != 5 || len(got.damage) != 1 || !got.damage[0].Tail {
				t.Fatalf("%s %s in the last record: %d records, damage %v", f.Magic, name, len(got.recs), got.damage)
			}
		}
	}
}

// TestScanHeader: a file that is not a segment, or of another version.
func TestScanHeader(t *testing.T) {
	s := testScanner(crcFormat)
	fn := func(Record) error { return nil }
	for _, c := range []struct {
		data []byte
		want error
	}{
		{nil, ErrNotSegment},
		{[]byte("TCRC"), ErrNotSegment},
		{[]byte("garbage!garbage"), ErrNotSegment},
		{[]byte("TCRC\x01\x00\x00\x00"), ErrVersion},
	} {
		if err := s.Scan(c.data, fn, nil); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.data, err, c.want)
		}
	}
	if err := s.Scan(crcFormat.Header(), fn, nil); err != nil {
		t.Fatalf("empty segment: %v", err)
	}
	stop := errors.New("stop")
	data, _ := writeOne(t, crcFormat, 3)
	if err := s.Scan(data, func(Record) error { return stop }, nil); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
}

// TestReadAt reads records by position, and refuses changed ones.
func TestReadAt(t *testing.T) {
	data, pos := writeOne(t, crcFormat, 4)
	r := bytes.NewReader(data)
	for i, p := range pos {
		n := int(p.Size - crcFormat.RecordSize(0))
		rec, err := crcFormat.ReadAt(r, p.Off, n)
		wantPrefix, wantBody := testRecord(crcFormat, uint64(i+1), n)
		if err != nil || !bytes.Equal(rec.Prefix, wantPrefix) || !bytes.Equal(rec.Body, wantBody) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	n := int(pos[1].Size - crcFormat.RecordSize(0))
	if _, err := crcFormat.ReadAt(r, pos[1].Off, n+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong length: %v", err)
	}
	if _, err := crcFormat.ReadAt(bytes.NewReader(data[:pos[3].End()-1]), pos[3].Off, int(pos[3].Size-crcFormat.RecordSize(0))); !errors.Is(err, io.EOF) {
		t.Errorf("cut record: %v", err)
	}
	c := slices.Clone(data)
	c[pos[1].End()-1] ^= 1
	if _, err := crcFormat.ReadAt(bytes.NewReader(c), pos[1].Off, n); !errors.Is(err, ErrChecksum) {
		t.Errorf("flipped bit: %v", err)
	}
	// The CRC is CRC32C of the prefix and body, as the spool has written
	// it since its first version.
	crc := binary.LittleEndian.Uint32(data[pos[0].Off+4:])
	if want := crc32.Checksum(data[pos[0].Off+8:pos[0].End()], crc32.MakeTable(crc32.Castagnoli)); crc != want {
		t.Fatalf("crc %08x, want %08x", crc, want)
	}
}

// TestList orders segments by the numbers in their names.
func TestList(t *testing.T) {
	dir := t.TempDir()
	names := []string{"blocks-10-0.tblk", "blocks-9-1.tblk", "blocks-9-0.tblk", "blocks-x.tblk", "blocks-10-2.tblk",
		"blocks-.tblk", "other-1-1.tblk", "blocks-1-1.txt", "seg-00000000000000000002.spool"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "blocks-0-0.tblk"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := List(dir, "blocks-", ".tblk")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	want := []string{"blocks-.tblk", "blocks-x.tblk", "blocks-9-0.tblk", "blocks-9-1.tblk", "blocks-10-0.tblk", "blocks-10-2.tblk"}
	if !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	if _, err := List(filepath.Join(dir, "missing"), "b", ".x"); err == nil {
		t.Fatal("missing dir listed")
	}
	if err := Remove(filepath.Join(dir, "blocks-9-0.tblk")); err != nil {
		t.Fatal(err)
	}
	if err := Remove(filepath.Join(dir, "blocks-9-0.tblk")); err != nil {
		t.Fatal("removing a removed segment:", err)
	}
}
