package segfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Dir holds the segments; created (mode 0700) if missing.
	Dir string
	// Format of the segments.
	Format Format
	// SegmentSize is the size a segment does not grow past: a record that
	// would take it further goes to a new segment (a record larger than
	// the limit gets a segment of its own).
	SegmentSize int64
	// BufferSize is the write buffer of the open segment; 0 writes every
	// record with one write(2), so a process crash loses no appended
	// record.
	BufferSize int
	// Name returns the file name (in Dir) of a new segment whose first
	// record has this prefix. It must not name an existing file.
	Name func(prefix []byte) string
}

// Validate checks the configuration.
func (c WriterConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("segfile writer: dir is empty")
	case c.SegmentSize <= HeaderSize:
		return fmt.Errorf("segfile writer: segment size %d not above the header", c.SegmentSize)
	case c.BufferSize < 0:
		return fmt.Errorf("segfile writer: negative buffer size %d", c.BufferSize)
	case c.Name == nil:
		return errors.New("segfile writer: no Name function")
	}
	return c.Format.validate()
}

// WriterStats counts what a Writer wrote.
type WriterStats struct {
	Records  uint64 // records appended
	Bytes    uint64 // bytes written, framing and segment headers included
	Segments uint64 // segment files created
}

// Pos is where Append put a record.
type Pos struct {
	Path string // the segment file
	Off  int64  // the record's offset in it
	Size int64  // the record's size, framing included
}

// End is the offset just after the record: the segment's size.
func (p Pos) End() int64 { return p.Off + p.Size }

// Writer appends records to rotating segment files. New is inert: the
// first segment is created by the first Append. Segment files and the
// directory are private to the writer's user (0600, 0700) whatever the
// umask. A Writer is not safe for concurrent use.
type Writer struct {
	cfg     WriterConfig
	f       *os.File
	bw      *bufio.Writer // nil when unbuffered
	path    string
	size    int64
	scratch []byte
	stats   WriterStats
	closed  bool
}

// NewWriter validates cfg and creates the directory.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create segment dir: %w", err)
	}
	return &Writer{cfg: cfg}, nil
}

// Append writes one record, starting a new segment first when this one
// would grow past the size limit. prefix must be Format.Prefix bytes
// long. The bytes are copied or written before Append returns. A failed
// write abandons the segment (it may end in a torn record, which a
// Scanner reports), so the next Append starts a new one.
func (w *Writer) Append(prefix, body []byte) (Pos, error) {
	if w.closed {
		return Pos{}, ErrClosed
	}
	if len(prefix) != w.cfg.Format.Prefix {
		return Pos{}, fmt.Errorf("segfile: prefix of %d bytes, format has %d", len(prefix), w.cfg.Format.Prefix)
	}
	if err := w.cfg.Format.checkBody(len(body)); err != nil {
		return Pos{}, err
	}
	size := w.cfg.Format.RecordSize(len(body))
	if w.f != nil && w.size+size > w.cfg.SegmentSize && w.size > HeaderSize {
		if err := w.Rotate(); err != nil {
			return Pos{}, err
		}
	}
	if w.f == nil {
		if err := w.create(prefix); err != nil {
			return Pos{}, err
		}
	}
	if err := w.write(prefix, body); err != nil {
		w.Abandon()
		return Pos{}, fmt.Errorf("write segment %s: %w", w.path, err)
	}
	pos := Pos{Path: w.path, Off: w.size, Size: size}
	w.size += size
	w.stats.Records++
	w.stats.Bytes += uint64(size)
	return pos, nil
}

// write writes one framed record: with one write(2) when unbuffered.
func (w *Writer) write(prefix, body []byte) error {
	if w.bw == nil {
		w.scratch = append(w.cfg.Format.appendFraming(w.scratch[:0], prefix, body), body...)
		_, err := w.f.Write(w.scratch)
		if cap(w.scratch) > 1<<20 {
			w.scratch = nil // do not pin a large record's buffer
		}
		return err
	}
	w.scratch = w.cfg.Format.appendFraming(w.scratch[:0], prefix, body)
	if _, err := w.bw.Write(w.scratch); err != nil {
		return err
	}
	_, err := w.bw.Write(body)
	return err
}

// create opens a new segment and writes its header.
func (w *Writer) create(prefix []byte) error {
	path := filepath.Join(w.cfg.Dir, w.cfg.Name(prefix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.Write(w.cfg.Format.Header()); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create segment %s: %w", path, err)
	}
	if w.cfg.BufferSize > 0 {
		if w.bw == nil {
			w.bw = bufio.NewWriterSize(f, w.cfg.BufferSize)
		} else {
			w.bw.Reset(f)
		}
	}
	w.f, w.path, w.size = f, path, HeaderSize
	w.stats.Segments++
	w.stats.Bytes += HeaderSize
	return nil
}

// Flush writes buffered records to the open segment (no fsync).
func (w *Writer) Flush() error {
	if w.f == nil || w.bw == nil {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("flush segment %s: %w", w.path, err)
	}
	return nil
}

// Sync flushes and fsyncs the open segment.
func (w *Writer) Sync() error {
	if err := w.Flush(); err != nil || w.f == nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", w.path, err)
	}
	return nil
}

// Rotate flushes, fsyncs and closes the open segment, if any; the next
// Append starts a new one.
func (w *Writer) Rotate() error {
	if w.f == nil {
		return nil
	}
	err := w.Sync()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment %s: %w", w.path, cerr)
	}
	w.f = nil
	return err
}

// Abandon closes the open segment, if any, without flushing or syncing
// it: for a caller about to delete it. The next Append starts a new one.
func (w *Writer) Abandon() {
	if w.f == nil {
		return
	}
	w.f.Close()
	w.f = nil
	if w.bw != nil {
		w.bw.Reset(nil)
	}
}

// Active returns the path of the open segment, or "" if none is open.
func (w *Writer) Active() string {
	if w.f == nil {
		return ""
	}
	return w.path
}

// Stats returns the counters so far.
func (w *Writer) Stats() WriterStats { return w.stats }

// Close rotates (flush, fsync, close) the open segment and fsyncs the
// directory, so the segment's name survives a power loss. It is
// idempotent; Append after Close returns ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	if err := w.Rotate(); err != nil {
		return err
	}
	return syncDir(w.cfg.Dir)
}

// syncDir fsyncs a directory.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync segment dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync segment dir: %w", err)
	}
	return nil
}
