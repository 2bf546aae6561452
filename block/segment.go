package block

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tapir-sensor/tapir/segfile"
)

// Segment file constants. A segment is a segfile segment (magic TSEG,
// version 1) whose records are encoded blocks, framed by their length
// alone: a block carries its own magic and CRC.
const (
	SegmentMagic   = "TSEG"
	SegmentVersion = 1
	SegmentExt     = ".tblk"
	segmentPrefix  = "blocks-"
	segmentHeader  = segfile.HeaderSize
	recordHeader   = 4
)

// segmentFormat frames blocks in segment files.
var segmentFormat = segfile.Format{Magic: SegmentMagic, Version: SegmentVersion, MaxBody: MaxRawBody * 2}

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
	// BufferSize is the write buffer per open segment. Default 64 KiB:
	// the buffer stays in the level-2 cache between the copies of blocks
	// into it and write(2)'s copy out of it.
	BufferSize int
}

// DefaultDirWriterConfig returns the defaults (Dir must still be set).
func DefaultDirWriterConfig() DirWriterConfig {
	return DirWriterConfig{SegmentSize: 64 << 20, BufferSize: 64 << 10}
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
	mu sync.Mutex
	w  *segfile.Writer
	n  int // segments named
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
	d := &DirWriter{}
	// Blocks hold packet payloads: segfile keeps them private to the
	// writer's user whatever the umask (an existing directory keeps its
	// mode).
	w, err := segfile.NewWriter(segfile.WriterConfig{Dir: cfg.Dir, Format: segmentFormat,
		SegmentSize: cfg.SegmentSize, BufferSize: cfg.BufferSize, Name: d.segmentName})
	if err != nil {
		return nil, fmt.Errorf("block dir writer: %w", err)
	}
	d.w = w
	return d, nil
}

// segmentName names the next segment by the time and a counter, so that
// names sort in creation order.
func (d *DirWriter) segmentName([]byte) string {
	d.n++
	return fmt.Sprintf("%s%d-%d%s", segmentPrefix, time.Now().UnixNano(), d.n-1, SegmentExt)
}

// Write appends one encoded block (as returned by Builder.Encode). The
// bytes are copied before Write returns. It rotates to a new segment when
// the current one has reached the size limit.
func (d *DirWriter) Write(encoded []byte) error {
	if len(encoded) > segmentFormat.MaxBody {
		return fmt.Errorf("write block of %d bytes: %w", len(encoded), ErrTooLarge)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.w.Append(nil, encoded); err != nil {
		if errors.Is(err, segfile.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("write segment: %w", err)
	}
	return nil
}

// Flush writes buffered records to the open segment file (no fsync).
func (d *DirWriter) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Flush()
}

// Stats returns the counters so far.
func (d *DirWriter) Stats() DirWriterStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.w.Stats()
	return DirWriterStats{Blocks: st.Records, Bytes: st.Bytes, Segments: st.Segments}
}

// Close flushes, fsyncs and closes the open segment and fsyncs the
// directory. It is idempotent; Write after Close returns ErrClosed.
func (d *DirWriter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Close()
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

// addDamage counts a stretch of a segment the scanner could not read. A
// cut tail is a truncated segment; a damaged record is corrupt, and ends
// the segment too when no intact block follows it.
func (s *ReadStats) addDamage(name string, d segfile.Damage) {
	s.SkippedBytes += d.Len
	if !d.Tail || !errors.Is(d.Err, segfile.ErrShort) {
		s.Corrupt++
	}
	if d.Tail {
		s.Truncated++
	}
	s.addErr(fmt.Errorf("%s: %w", name, d))
}

// segmentScanner reads blocks framed in segments: a record is a block
// whose header gives the record's length; one found by searching past
// damage must decode.
var segmentScanner = segfile.Scanner{
	Format: segmentFormat,
	Plausible: func(rec []byte) bool {
		return len(rec) >= len(Magic) && string(rec[:len(Magic)]) == Magic
	},
	Check: func(r segfile.Record, found bool) error {
		_, total, err := ParseMeta(r.Body)
		if err == nil && total != len(r.Body) {
			err = fmt.Errorf("block length %d in record of %d: %w", total, len(r.Body), ErrCorrupt)
		}
		if err == nil && found {
			_, err = Decode(r.Body)
		}
		return err
	},
}

// ReadSegment reads the blocks of one segment held in data. Blocks whose
// Meta the filter rejects are not decompressed (filter may be nil). A
// block that fails to decode is counted and skipped; a record whose
// length runs past the end (a crash mid-write) ends the segment and is
// counted as truncated. Only an error from fn, or data that is not a
// segment at all, is returned as an error. name labels errors.
func ReadSegment(name string, data []byte, filter func(Meta) bool, fn func(Meta, *Block) error, st *ReadStats) error {
	switch err := segmentFormat.CheckHeader(data); {
	case errors.Is(err, segfile.ErrVersion):
		return fmt.Errorf("%s: segment version %d: %w", name, data[4], ErrVersion)
	case err != nil:
		return fmt.Errorf("%s: %w", name, ErrSegment)
	}
	st.Segments++
	return segmentScanner.Scan(data, func(r segfile.Record) error {
		return readBlock(name, r, filter, fn, st)
	}, func(d segfile.Damage) { st.addDamage(name, d) })
}

// readBlock filters and decodes the block of one intact record.
func readBlock(name string, r segfile.Record, filter func(Meta) bool, fn func(Meta, *Block) error, st *ReadStats) error {
	if filter != nil {
		meta, _, _ := ParseMeta(r.Body) // checked by the scanner
		if !filter(meta) {
			st.Filtered++
			return nil
		}
	}
	blk, err := Decode(r.Body)
	if err != nil {
		st.Corrupt++
		st.SkippedBytes += r.Size
		st.addErr(fmt.Errorf("%s at %d: %w", name, r.Off, err))
		return nil
	}
	st.Blocks++
	return fn(blk.Meta, blk)
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

// SegmentFiles lists the segment files of dir in read order (see
// segfile.List; a .tblk file whose name this package did not write is
// listed first, so that the reader counts what it cannot read).
func SegmentFiles(dir string) ([]string, error) {
	names, err := segfile.List(dir, segmentPrefix, SegmentExt)
	if err != nil {
		return nil, fmt.Errorf("list block dir: %w", err)
	}
	return names, nil
}
