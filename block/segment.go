package block

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Segment file constants.
const (
	SegmentMagic   = "TSEG"
	SegmentVersion = 1
	SegmentExt     = ".tblk"
	segmentHeader  = 8
	recordHeader   = 4
)

// Segment errors.
var (
	ErrSegment = errors.New("block: not a segment file")
	ErrClosed  = errors.New("block: writer closed")
)

// DirWriterConfig configures a DirWriter.
type DirWriterConfig struct {
	// Dir is the directory segment files go to; created if missing.
	Dir string
	// SegmentSize is the size in bytes after which a segment is closed
	// and a new one started. Default 64 MiB.
	SegmentSize int64
	// BufferSize is the write buffer per open segment. Default 256 KiB.
	BufferSize int
}

// DefaultDirWriterConfig returns the defaults (Dir must still be set).
func DefaultDirWriterConfig() DirWriterConfig {
	return DirWriterConfig{SegmentSize: 64 << 20, BufferSize: 256 << 10}
}

// Validate checks the configuration.
func (c DirWriterConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("block dir writer: dir is empty")
	}
	if c.SegmentSize < 1<<10 {
		return fmt.Errorf("block dir writer: segment size %d below 1 KiB", c.SegmentSize)
	}
	if c.BufferSize < 0 {
		return fmt.Errorf("block dir writer: negative buffer size %d", c.BufferSize)
	}
	return nil
}

// DirWriterStats counts what a DirWriter wrote.
type DirWriterStats struct {
	Blocks   uint64 // blocks written
	Bytes    uint64 // bytes written, framing and segment headers included
	Segments uint64 // segment files opened
}

// DirWriter appends encoded blocks to rotating segment files in a
// directory. It is safe for concurrent use by several goroutines; each
// Write is one record, never interleaved with another.
type DirWriter struct {
	cfg DirWriterConfig

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	size   int64
	n      int
	stats  DirWriterStats
	closed bool
}

// NewDirWriter validates cfg (filling defaults for zero fields) and
// creates the directory. The first segment is opened by the first Write.
func NewDirWriter(cfg DirWriterConfig) (*DirWriter, error) {
	def := DefaultDirWriterConfig()
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = def.SegmentSize
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = def.BufferSize
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Blocks hold packet payloads: private to the writer's user whatever
	// the umask (an existing directory keeps its mode).
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create block dir: %w", err)
	}
	return &DirWriter{cfg: cfg}, nil
}

// Write appends one encoded block (as returned by Builder.Encode). The
// bytes are copied before Write returns. It rotates to a new segment when
// the current one has reached the size limit.
func (d *DirWriter) Write(encoded []byte) error {
	if len(encoded) > MaxRawBody*2 {
		return fmt.Errorf("write block of %d bytes: %w", len(encoded), ErrTooLarge)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.f != nil && d.size+int64(recordHeader+len(encoded)) > d.cfg.SegmentSize && d.size > segmentHeader {
		if err := d.closeSegment(); err != nil {
			return err
		}
	}
	if d.f == nil {
		if err := d.openSegment(); err != nil {
			return err
		}
	}
	var hdr [recordHeader]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(encoded)))
	if _, err := d.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	if _, err := d.w.Write(encoded); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	n := int64(recordHeader + len(encoded))
	d.size += n
	d.stats.Blocks++
	d.stats.Bytes += uint64(n)
	return nil
}

func (d *DirWriter) openSegment() error {
	name := filepath.Join(d.cfg.Dir, fmt.Sprintf("blocks-%d-%d%s", time.Now().UnixNano(), d.n, SegmentExt))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	d.n++
	if d.w == nil {
		d.w = bufio.NewWriterSize(f, d.cfg.BufferSize)
	} else {
		d.w.Reset(f)
	}
	hdr := [segmentHeader]byte{'T', 'S', 'E', 'G', SegmentVersion}
	if _, err := d.w.Write(hdr[:]); err != nil {
		f.Close()
		return fmt.Errorf("write segment header: %w", err)
	}
	d.f = f
	d.size = segmentHeader
	d.stats.Segments++
	d.stats.Bytes += segmentHeader
	return nil
}

func (d *DirWriter) closeSegment() error {
	f := d.f
	d.f = nil
	err := d.w.Flush()
	if e := f.Sync(); err == nil {
		err = e
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("close segment %s: %w", f.Name(), err)
	}
	return nil
}

// Flush writes buffered records to the open segment file (no fsync).
func (d *DirWriter) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("flush segment: %w", err)
	}
	return nil
}

// Stats returns the counters so far.
func (d *DirWriter) Stats() DirWriterStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Close flushes, fsyncs and closes the open segment and fsyncs the
// directory. It is idempotent; Write after Close returns ErrClosed.
func (d *DirWriter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.f == nil {
		return nil
	}
	if err := d.closeSegment(); err != nil {
		return err
	}
	dir, err := os.Open(d.cfg.Dir)
	if err != nil {
		return fmt.Errorf("sync block dir: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sync block dir: %w", err)
	}
	return nil
}

// ReadStats reports what a read found, damage included.
type ReadStats struct {
	Segments     int     // segment files read
	Blocks       int     // blocks decoded and handed on
	Filtered     int     // blocks skipped by the filter
	Corrupt      int     // framed blocks that failed to decode (skipped)
	Truncated    int     // segments with a damaged or truncated tail
	SkippedBytes int64   // bytes not read as blocks because of damage
	Errors       []error // the first damage errors (at most 16), with file and offset
}

// Damaged reports whether anything was skipped.
func (s *ReadStats) Damaged() bool { return s.Corrupt > 0 || s.Truncated > 0 }

func (s *ReadStats) addErr(err error) {
	if len(s.Errors) < 16 {
		s.Errors = append(s.Errors, err)
	}
}

// ReadSegment reads the blocks of one segment held in data. Blocks whose
// Meta the filter rejects are not decompressed (filter may be nil). A
// block that fails to decode is counted and skipped; a record whose
// length runs past the end (a crash mid-write) ends the segment and is
// counted as truncated. Only an error from fn, or data that is not a
// segment at all, is returned as an error. name labels errors.
func ReadSegment(name string, data []byte, filter func(Meta) bool, fn func(Meta, *Block) error, st *ReadStats) error {
	if len(data) < segmentHeader || string(data[:4]) != SegmentMagic {
		return fmt.Errorf("%s: %w", name, ErrSegment)
	}
	if data[4] != SegmentVersion {
		return fmt.Errorf("%s: segment version %d: %w", name, data[4], ErrVersion)
	}
	st.Segments++
	off := segmentHeader
	for off < len(data) {
		if len(data)-off < recordHeader {
			st.Truncated++
			st.SkippedBytes += int64(len(data) - off)
			st.addErr(fmt.Errorf("%s at %d: partial record header: %w", name, off, ErrShort))
			return nil
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		rec := data[off+recordHeader:]
		if n > len(rec) {
			// Either the tail was cut or the length is damaged: look for
			// a later intact record before giving up on the segment.
			next := resync(data, off+1)
			if next < 0 {
				st.Truncated++
				st.SkippedBytes += int64(len(data) - off)
				st.addErr(fmt.Errorf("%s at %d: record of %d bytes, %d left: %w", name, off, n, len(rec), ErrShort))
				return nil
			}
			st.Corrupt++
			st.SkippedBytes += int64(next - off)
			st.addErr(fmt.Errorf("%s at %d: bad record length %d: %w", name, off, n, ErrCorrupt))
			off = next
			continue
		}
		rec = rec[:n]
		meta, total, err := ParseMeta(rec)
		if err == nil && total != n {
			err = fmt.Errorf("block length %d in record of %d: %w", total, n, ErrCorrupt)
		}
		if err != nil {
			// The framing is not trustworthy: skip to the next intact
			// record, or give up on the rest of the segment.
			st.Corrupt++
			st.addErr(fmt.Errorf("%s at %d: %w", name, off, err))
			next := resync(data, off+1)
			if next < 0 {
				st.Truncated++
				st.SkippedBytes += int64(len(data) - off)
				return nil
			}
			st.SkippedBytes += int64(next - off)
			off = next
			continue
		}
		if filter != nil && !filter(meta) {
			st.Filtered++
			off += recordHeader + n
			continue
		}
		blk, err := Decode(rec)
		if err != nil {
			st.Corrupt++
			st.SkippedBytes += int64(recordHeader + n)
			st.addErr(fmt.Errorf("%s at %d: %w", name, off, err))
			off += recordHeader + n
			continue
		}
		st.Blocks++
		if err := fn(blk.Meta, blk); err != nil {
			return err
		}
		off += recordHeader + n
	}
	return nil
}

// resync returns the offset at or after from of the next record that
// holds an intact block, or -1.
func resync(data []byte, from int) int {
	for from+recordHeader < len(data) {
		i := bytes.Index(data[from+recordHeader:], []byte(Magic))
		if i < 0 {
			return -1
		}
		off := from + i
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n <= len(data)-off-recordHeader {
			if _, err := Decode(data[off+recordHeader : off+recordHeader+n]); err == nil {
				return off
			}
		}
		from = off + 1
	}
	return -1
}

// DirReader reads every segment file of a directory in name order (which
// is creation order for one writer). It holds one segment in memory at a
// time. Not safe for concurrent use.
type DirReader struct {
	Dir string
	// Filter, if set, selects blocks by Meta before they are
	// decompressed.
	Filter func(Meta) bool
}

// Read calls fn for every block that passes the filter. Damage inside
// segments is counted in the returned stats, not returned as an error;
// errors are I/O errors on the directory and errors from fn.
func (r *DirReader) Read(fn func(Meta, *Block) error) (ReadStats, error) {
	var st ReadStats
	names, err := SegmentFiles(r.Dir)
	if err != nil {
		return st, err
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return st, fmt.Errorf("read segment: %w", err)
		}
		if err := ReadSegment(name, data, r.Filter, fn, &st); err != nil {
			if errors.Is(err, ErrSegment) || errors.Is(err, ErrVersion) {
				st.Truncated++
				st.SkippedBytes += int64(len(data))
				st.addErr(err)
				continue
			}
			return st, err
		}
	}
	return st, nil
}

// ReadDir reads every block in dir; see DirReader.Read.
func ReadDir(dir string, fn func(Meta, *Block) error) (ReadStats, error) {
	r := DirReader{Dir: dir}
	return r.Read(fn)
}

// SegmentFiles lists the segment files of dir in read order.
func SegmentFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block dir: %w", err)
	}
	type seg struct {
		name    string
		ts, seq int64
	}
	var segs []seg
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, "blocks-") || !strings.HasSuffix(n, SegmentExt) {
			continue
		}
		var s seg
		s.name = filepath.Join(dir, n)
		if _, err := fmt.Sscanf(strings.TrimSuffix(n, SegmentExt), "blocks-%d-%d", &s.ts, &s.seq); err != nil {
			// Not a name this package writes: still listed (the reader
			// counts what it cannot read), ordered first, by name.
			s.ts, s.seq = 0, 0
		}
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b seg) int {
		if a.ts != b.ts {
			return cmpInt(a.ts, b.ts)
		}
		if a.seq != b.seq {
			return cmpInt(a.seq, b.seq)
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.name
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
