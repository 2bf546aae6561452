// Package spool is the sensor's on-disk queue of batches awaiting the
// collector's acknowledgement.
//
// The spool is a directory of segment files seg-<first seq>.spool
// (package segfile: it writes, rotates, fsyncs, scans and lists them),
// each starting with the 8 bytes "TSPL" 1 0 0 0 and holding records
//
//	4  payload length n (little-endian)
//	4  CRC32C (Castagnoli) of the next 8+n bytes
//	8  batch sequence number (little-endian)
//	n  payload (a marshalled tapirv1.Batch)
//
// in increasing seq order. A small state file (written atomically:
// temporary file, fsync, rename) holds the ack watermark, the highest
// sequence number reserved, so sequence numbers never repeat across
// restarts, and the spool's epoch: a random non-zero number drawn when
// the spool (or its state) is created, which names the sensor's sequence
// space at the collector, so a fresh spool never has its batches taken
// for another spool's. Open truncates a torn tail (a partial record left
// by a crash) and counts it; a corrupt record followed by intact ones
// (a flipped bit) is skipped, counted and logged with its segment and
// offset, and the records after it are kept. Segments whose every batch
// is acked are deleted; when the spool exceeds its size cap the oldest
// segments are deleted even if unacked, and their unacked batches
// counted as dropped.
//
// Durability: records are written with one write(2) each; segments are
// fsynced when they are closed and on Sync/Close (Close fsyncs the
// directory too), so a process crash loses nothing and a power loss at
// most the unsynced tail.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tapir-sensor/tapir/segfile"
)

// Sentinel errors.
var (
	// ErrClosed: the spool was closed.
	ErrClosed = errors.New("spool: closed")
	// ErrSeqOrder: Append was given a seq not above the last one.
	ErrSeqOrder = errors.New("spool: seq not increasing")
	// ErrTooLarge: a payload larger than MaxRecord.
	ErrTooLarge = errors.New("spool: record too large")
)

const (
	headerLen  = 16 // a record's length, CRC and seq: format.RecordSize(0)
	stateFile  = "state"
	seqReserve = 1024
	segPrefix  = "seg-"
	segExt     = ".spool"
	// MaxRecord bounds one payload.
	MaxRecord = 256 << 20
)

// format frames spool records: a CRC, then the seq as the prefix the
// length does not count.
var format = segfile.Format{Magic: "TSPL", Version: 1, CRC: true, Prefix: 8, MaxBody: MaxRecord}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Config of a spool.
type Config struct {
	// Dir holds the segments and the state file.
	Dir string `yaml:"dir"`
	// MaxBytes caps the segments' total size; beyond it the oldest
	// segments are dropped.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size a segment does not grow past: a batch
	// that would take it further starts a new segment.
	SegmentBytes int64 `yaml:"segment_bytes"`
}

// DefaultConfig returns a 1 GiB spool of 16 MiB segments in dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, MaxBytes: 1 << 30, SegmentBytes: 16 << 20}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("spool: dir is required")
	case c.SegmentBytes < 4096:
		return errors.New("spool: segment_bytes must be at least 4096")
	case c.MaxBytes < 2*c.SegmentBytes:
		return errors.New("spool: max_bytes must be at least twice segment_bytes")
	}
	return nil
}

// Stats are the spool's counters.
type Stats struct {
	Bytes          int64  // size of the segments now
	Batches        int64  // unacked batches held
	Segments       int    // segment files
	DroppedBatches uint64 // unacked batches deleted because the spool was full
	DroppedBytes   uint64 // their payload bytes
	TornRecords    uint64 // torn records truncated by Open (a crash's partial tail)
	TruncatedBytes uint64 // bytes truncated by Open
	// CorruptRecords are records skipped because their checksum failed
	// while intact records follow them (found by Open or by a read); their
	// batches are lost. CorruptBytes are the bytes skipped.
	CorruptRecords  uint64
	CorruptBytes    uint64
	AppendedBatches uint64
	Acked           uint64 // ack watermark
}

type segment struct {
	first uint64
	path  string
	size  int64
	seqs  []uint64 // seq of each record, in order
	offs  []int64  // offset of each record
	lens  []int    // payload length of each record
}

// Spool is an on-disk batch queue. It is safe for concurrent use.
type Spool struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	segs     []*segment
	w        *segfile.Writer // appends to the last segment
	bytes    int64
	lastSeq  uint64
	acked    uint64
	reserved uint64 // seqs up to this are reserved in the state file
	nextSeq  uint64
	epoch    uint64 // the sequence space, drawn when the state is created
	st       Stats
}

// Open opens (creating if needed) the spool in cfg.Dir, recovering from
// a crash: torn tails are truncated and counted in Stats.
func Open(cfg Config, log *slog.Logger) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := segfile.NewWriter(segfile.WriterConfig{Dir: cfg.Dir, Format: format,
		SegmentSize: cfg.SegmentBytes, Name: segmentName})
	if err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	s := &Spool{cfg: cfg, log: log, w: w}
	if err := s.readState(); err != nil {
		return nil, err
	}
	if err := s.recoverSegments(); err != nil {
		return nil, err
	}
	s.nextSeq = max(s.reserved, s.lastSeq, s.acked) + 1
	if s.epoch == 0 {
		s.epoch = newEpoch()
		log.Info("spool: new sequence epoch", "dir", cfg.Dir, "epoch", s.epoch)
		if err := s.writeStateLocked(); err != nil {
			return nil, err
		}
	}
	if err := s.deleteAckedLocked(); err != nil {
		return nil, err
	}
	if s.st.TornRecords > 0 {
		log.Warn("spool recovered torn records", "records", s.st.TornRecords, "bytes", s.st.TruncatedBytes)
	}
	return s, nil
}

// segmentName names a segment by the seq of its first record,
// zero-padded so that names sort in seq order.
func segmentName(prefix []byte) string {
	return fmt.Sprintf("%s%020d%s", segPrefix, binary.LittleEndian.Uint64(prefix), segExt)
}

// recoverSegments indexes the segments on disk, oldest first.
func (s *Spool) recoverSegments() error {
	names, err := segfile.List(s.cfg.Dir, segPrefix, segExt)
	if err != nil {
		return fmt.Errorf("list spool: %w", err)
	}
	for i, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), segPrefix), segExt), 10, 64)
		if err != nil {
			continue // not a name the spool writes
		}
		seg, err := s.recover(name, first, i == len(names)-1)
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size
		if n := len(seg.seqs); n > 0 {
			s.lastSeq = max(s.lastSeq, seg.seqs[n-1])
		}
	}
	return nil
}

// recover scans one segment. A bad record with a valid one after it is
// skipped (corrupt: counted and logged). A bad tail is truncated: in the
// last segment it is torn (a crash mid-append); in an earlier one, which
// was synced when it was closed, it is corrupt.
func (s *Spool) recover(name string, first uint64, last bool) (*segment, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read spool segment: %w", err)
	}
	seg := &segment{first: first, path: name, size: int64(len(data))}
	prev := uint64(0) // seq of the last intact record
	sc := segfile.Scanner{
		Format: format,
		// A candidate whose seq is not plausibly close to prev is passed
		// over before its checksum is computed, so a scan through
		// garbage stays linear.
		Plausible: func(rec []byte) bool {
			seq := binary.LittleEndian.Uint64(rec)
			return seq > prev && seq-prev <= 1<<32
		},
		Check: func(r segfile.Record, _ bool) error {
			if binary.LittleEndian.Uint64(r.Prefix) <= prev {
				return ErrSeqOrder
			}
			return nil
		},
	}
	err = sc.Scan(data, func(r segfile.Record) error {
		prev = binary.LittleEndian.Uint64(r.Prefix)
		seg.seqs = append(seg.seqs, prev)
		seg.offs = append(seg.offs, r.Off)
		seg.lens = append(seg.lens, len(r.Body))
		return nil
	}, func(d segfile.Damage) {
		if d.Tail {
			seg.size = d.Off
			s.tail(name, d, last, prev)
			return
		}
		s.st.CorruptRecords++
		s.st.CorruptBytes += uint64(d.Len)
		s.log.Error("spool: corrupt batch skipped; the batches after it are kept",
			"segment", name, "offset", d.Off, "bytes", d.Len, "after_seq", prev)
	})
	if errors.Is(err, segfile.ErrNotSegment) || errors.Is(err, segfile.ErrVersion) {
		s.st.TornRecords++
		s.st.TruncatedBytes += uint64(len(data))
		if err := segfile.Remove(name); err != nil {
			return nil, fmt.Errorf("remove bad spool segment: %w", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if seg.size < int64(len(data)) {
		if err := os.Truncate(name, seg.size); err != nil {
			return nil, fmt.Errorf("truncate torn spool segment: %w", err)
		}
	}
	return seg, nil
}

// tail counts a bad tail, which recover truncates: torn in the last
// segment, corrupt in an earlier one.
func (s *Spool) tail(name string, d segfile.Damage, last bool, prev uint64) {
	if last {
		s.st.TornRecords++
	} else {
		s.st.CorruptRecords++
		s.st.CorruptBytes += uint64(d.Len)
		s.log.Error("spool: corrupt batch at the end of a closed segment dropped",
			"segment", name, "offset", d.Off, "bytes", d.Len, "after_seq", prev)
	}
	s.st.TruncatedBytes += uint64(d.Len)
}

// NextSeq allocates the next batch sequence number. Numbers are reserved
// durably in blocks, so they never repeat after a restart (a crash skips
// the rest of the block).
func (s *Spool) NextSeq() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	seq := s.nextSeq
	if seq > s.reserved {
		s.reserved = seq + seqReserve
		if err := s.writeStateLocked(); err != nil {
			s.reserved = seq - 1
			return 0, err
		}
	}
	s.nextSeq++
	return seq, nil
}

// Append adds a batch. seq must exceed every seq appended before. If the
// spool is over its cap afterwards, the oldest segments are dropped.
func (s *Spool) Append(seq uint64, payload []byte) error {
	if len(payload) > MaxRecord {
		return ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if seq <= s.lastSeq {
		return fmt.Errorf("%w: %d after %d", ErrSeqOrder, seq, s.lastSeq)
	}
	if seq <= s.acked {
		return nil // already durable at the collector
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], seq)
	pos, err := s.w.Append(prefix[:], payload)
	if err != nil {
		return fmt.Errorf("append to spool: %w", err)
	}
	seg := s.segmentFor(pos.Path, seq)
	seg.seqs = append(seg.seqs, seq)
	seg.offs = append(seg.offs, pos.Off)
	seg.lens = append(seg.lens, len(payload))
	s.bytes += pos.End() - seg.size
	seg.size = pos.End()
	s.lastSeq = seq
	s.st.AppendedBatches++
	if seq >= s.nextSeq {
		s.nextSeq = seq + 1
	}
	return s.enforceCapLocked()
}

// segmentFor returns the indexed segment at path, the one the writer
// appended to, indexing it if the writer has just started it.
func (s *Spool) segmentFor(path string, first uint64) *segment {
	if n := len(s.segs); n > 0 && s.segs[n-1].path == path {
		return s.segs[n-1]
	}
	seg := &segment{first: first, path: path}
	s.segs = append(s.segs, seg)
	return seg
}

func (s *Spool) enforceCapLocked() error {
	for s.bytes > s.cfg.MaxBytes && len(s.segs) > 1 {
		seg := s.segs[0]
		var n, b uint64
		for i, q := range seg.seqs {
			if q > s.acked {
				n++
				b += uint64(seg.lens[i])
			}
		}
		s.st.DroppedBatches += n
		s.st.DroppedBytes += b
		s.log.Warn("spool full: dropped oldest segment", "batches", n, "bytes", b,
			"first_seq", seg.first, "max_bytes", s.cfg.MaxBytes)
		if err := s.removeFirstLocked(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) removeFirstLocked() error {
	seg := s.segs[0]
	if s.w.Active() == seg.path {
		s.w.Abandon() // no use syncing what is deleted
	}
	if err := segfile.Remove(seg.path); err != nil {
		return fmt.Errorf("remove spool segment: %w", err)
	}
	s.bytes -= seg.size
	s.segs = s.segs[1:]
	return nil
}

// Ack records that every batch with seq <= seq is durable at the
// collector: the watermark is persisted and fully acked segments deleted.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if seq <= s.acked {
		return nil
	}
	s.acked = seq
	if err := s.writeStateLocked(); err != nil {
		return err
	}
	return s.deleteAckedLocked()
}

func (s *Spool) deleteAckedLocked() error {
	for len(s.segs) > 0 {
		seg := s.segs[0]
		last := seg.first
		if n := len(seg.seqs); n > 0 {
			last = seg.seqs[n-1]
		}
		if last > s.acked {
			break
		}
		if err := s.removeFirstLocked(); err != nil {
			return err
		}
	}
	return nil
}

// Acked returns the ack watermark.
func (s *Spool) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Bytes = s.bytes
	st.Segments = len(s.segs)
	st.Acked = s.acked
	for _, seg := range s.segs {
		for _, q := range seg.seqs {
			if q > s.acked {
				st.Batches++
			}
		}
	}
	return st
}

// Pending reports whether the spool holds a batch with seq > after.
func (s *Spool) Pending(after uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq > max(after, s.acked) && len(s.segs) > 0
}

// ReadAfter calls fn, oldest first, for up to max unacked batches with
// seq > after. payload is a fresh copy. It returns the number read.
func (s *Spool) ReadAfter(after uint64, limit int, fn func(seq uint64, payload []byte) error) (int, error) {
	type loc struct {
		path string
		seq  uint64
		off  int64
		n    int
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	after = max(after, s.acked)
	var locs []loc
	for _, seg := range s.segs {
		if n := len(seg.seqs); n == 0 || seg.seqs[n-1] <= after {
			continue
		}
		i, _ := slices.BinarySearch(seg.seqs, after+1)
		for ; i < len(seg.seqs) && len(locs) < limit; i++ {
			locs = append(locs, loc{seg.path, seg.seqs[i], seg.offs[i], seg.lens[i]})
		}
		if len(locs) >= limit {
			break
		}
	}
	s.mu.Unlock()
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	read := 0
	for _, l := range locs {
		if f == nil || f.Name() != l.path {
			if f != nil {
				f.Close()
			}
			var err error
			f, err = os.Open(l.path)
			if errors.Is(err, os.ErrNotExist) {
				f = nil
				continue // dropped or acked meanwhile
			}
			if err != nil {
				return read, fmt.Errorf("read spool: %w", err)
			}
		}
		rec, err := format.ReadAt(f, l.off, l.n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			continue // truncated meanwhile
		case errors.Is(err, segfile.ErrChecksum) || errors.Is(err, segfile.ErrCorrupt) ||
			err == nil && binary.LittleEndian.Uint64(rec.Prefix) != l.seq:
			s.corrupt(l.path, l.off, l.seq, int(format.RecordSize(l.n)))
			continue
		case err != nil:
			return read, fmt.Errorf("read spool: %w", err)
		}
		if err := fn(l.seq, rec.Body); err != nil {
			return read, err
		}
		read++
	}
	return read, nil
}

// corrupt counts and logs a record found corrupt on read: it is skipped
// (its batch is lost) and the reader goes on with the next one.
func (s *Spool) corrupt(path string, off int64, seq uint64, n int) {
	s.mu.Lock()
	s.st.CorruptRecords++
	s.st.CorruptBytes += uint64(n)
	s.mu.Unlock()
	s.log.Error("spool: corrupt batch skipped on read; the batches after it are kept",
		"segment", path, "offset", off, "seq", seq, "bytes", n)
}

// Epoch returns the spool's sequence epoch (non-zero): the sensor's
// batches are identified by (sensor id, epoch, seq).
func (s *Spool) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// newEpoch draws a random non-zero epoch.
func newEpoch() uint64 {
	for {
		if e := rand.Uint64(); e != 0 {
			return e
		}
	}
}

// Sync flushes the active segment to disk.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("sync spool: %w", err)
	}
	return nil
}

// Close syncs and closes the spool. It is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Close()
	if werr := s.writeStateLocked(); err == nil {
		err = werr
	}
	return err
}

// state file v2: "TSST" 2 0 0 0, acked u64, reserved u64, epoch u64,
// crc32c u32. Version 1 (no epoch) is read, and gets a new epoch.
const (
	stateMagicV1 = "TSST\x01\x00\x00\x00"
	stateMagicV2 = "TSST\x02\x00\x00\x00"
	stateLenV1   = 28
	stateLenV2   = 36
)

func (s *Spool) readState() error {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read spool state: %w", err)
	}
	switch {
	case len(b) == stateLenV2 && string(b[:8]) == stateMagicV2 &&
		crc32.Checksum(b[:32], castagnoli) == binary.LittleEndian.Uint32(b[32:]):
		s.epoch = binary.LittleEndian.Uint64(b[24:])
	case len(b) == stateLenV1 && string(b[:8]) == stateMagicV1 &&
		crc32.Checksum(b[:24], castagnoli) == binary.LittleEndian.Uint32(b[24:]):
		// Written before epochs: Open draws one.
	default:
		return errors.New("read spool state: corrupt state file")
	}
	s.acked = binary.LittleEndian.Uint64(b[8:])
	s.reserved = binary.LittleEndian.Uint64(b[16:])
	return nil
}

func (s *Spool) writeStateLocked() error {
	b := make([]byte, stateLenV2)
	copy(b, stateMagicV2)
	binary.LittleEndian.PutUint64(b[8:], s.acked)
	binary.LittleEndian.PutUint64(b[16:], max(s.reserved, s.nextSeq-1))
	binary.LittleEndian.PutUint64(b[24:], s.epoch)
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
	path := filepath.Join(s.cfg.Dir, stateFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write spool state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write spool state: %w", err)
	}
	return nil
}
