// Package segfile holds the file mechanics shared by tapir's append-only
// segment files: the packet-block segments that `tapir-sensor
// --blocks-out` writes and `tapir pcap --blocks` reads (package block),
// and the sensor's spool of batches awaiting the collector's
// acknowledgement (package sensor/spool). Each of those keeps only what
// differs: its record contents, its file names, its counters.
//
// A segment file is an 8-byte header (4 magic bytes, a version byte,
// 3 reserved zero bytes) followed by records:
//
//	4  body length n (little-endian)
//	4  CRC32C (Castagnoli) of the prefix and the body (Format.CRC only)
//	p  prefix: fixed-size fields the length does not count (Format.Prefix)
//	n  body
//
// A Writer appends records to a directory of segments, starting a new
// segment when the next record would take the current one past its size
// limit, and fsyncs a segment when it closes it. A Scanner reads the
// records of one segment and reports damage: a damaged record with an
// intact record after it is skipped, a damaged or cut tail (a crash
// mid-write) ends the segment; the caller counts both. List orders a
// directory's segments; Remove deletes a whole segment.
package segfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// HeaderSize is the size of a segment file's header.
const HeaderSize = 8

// Errors. Scan and ReadAt wrap one of them.
var (
	// ErrNotSegment: the data does not start with the format's magic.
	ErrNotSegment = errors.New("segfile: not a segment file")
	// ErrVersion: the segment is of a version the format does not read.
	ErrVersion = errors.New("segfile: unsupported segment version")
	// ErrShort: a record's framing or body runs past the end of the data.
	ErrShort = errors.New("segfile: truncated record")
	// ErrChecksum: a record's CRC does not match its contents.
	ErrChecksum = errors.New("segfile: record checksum mismatch")
	// ErrTooLarge: a record body above Format.MaxBody.
	ErrTooLarge = errors.New("segfile: record too large")
	// ErrCorrupt: a record read by position is not the one expected.
	ErrCorrupt = errors.New("segfile: corrupt record")
	// ErrClosed: the Writer was closed.
	ErrClosed = errors.New("segfile: writer closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Format describes one kind of segment file. Its zero value is not
// usable: Magic must be 4 bytes.
type Format struct {
	// Magic is the 4 bytes every segment of this kind starts with.
	Magic string
	// Version follows the magic; a segment of another version is refused
	// with ErrVersion.
	Version byte
	// CRC puts a CRC32C of the prefix and body after each record's length.
	CRC bool
	// Prefix is the size of the fixed fields between the framing and the
	// body that the length does not count (0 for none).
	Prefix int
	// MaxBody bounds a record's body; a longer one is refused on write and
	// taken for damage on read. 0 means no bound beyond the 32-bit length.
	MaxBody int
}

// validate checks the format itself (a programming error if it fails).
func (f Format) validate() error {
	if len(f.Magic) != 4 || f.Prefix < 0 || f.MaxBody < 0 {
		return fmt.Errorf("segfile: bad format (magic %q, prefix %d, max body %d)", f.Magic, f.Prefix, f.MaxBody)
	}
	return nil
}

// Header returns the header a segment of this format starts with.
func (f Format) Header() []byte {
	return []byte{f.Magic[0], f.Magic[1], f.Magic[2], f.Magic[3], f.Version, 0, 0, 0}
}

// CheckHeader reports whether data starts with a header of this format:
// nil, ErrNotSegment or ErrVersion. The reserved bytes are not checked.
func (f Format) CheckHeader(data []byte) error {
	if len(data) < HeaderSize || string(data[:4]) != f.Magic {
		return ErrNotSegment
	}
	if data[4] != f.Version {
		return fmt.Errorf("version %d: %w", data[4], ErrVersion)
	}
	return nil
}

// framing is the size of a record's length, CRC and prefix: all of a
// record but its body.
func (f Format) framing() int {
	n := 4 + f.Prefix
	if f.CRC {
		n += 4
	}
	return n
}

// RecordSize returns the size on disk of a record with a body of n bytes.
func (f Format) RecordSize(n int) int64 { return int64(f.framing() + n) }

// checkBody refuses a body the format does not allow.
func (f Format) checkBody(n int) error {
	if f.MaxBody > 0 && n > f.MaxBody || uint64(n) > 1<<32-1 {
		return fmt.Errorf("body of %d bytes: %w", n, ErrTooLarge)
	}
	return nil
}

// appendFraming appends a record's length, CRC and prefix to dst.
func (f Format) appendFraming(dst, prefix, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	if f.CRC {
		crc := crc32.Update(0, castagnoli, prefix)
		dst = binary.LittleEndian.AppendUint32(dst, crc32.Update(crc, castagnoli, body))
	}
	return append(dst, prefix...)
}

// Record is one record of a segment. Prefix and Body alias the data it
// was read from.
type Record struct {
	Off    int64  // offset of the record in its segment
	Size   int64  // its size on disk, framing included
	Prefix []byte // Format.Prefix bytes
	Body   []byte
}

// parse reads the record at the start of b (at offset off of its
// segment), checking its framing, size bound and CRC.
func (f Format) parse(b []byte, off int64) (Record, error) {
	fr := f.framing()
	if len(b) < fr {
		return Record{}, fmt.Errorf("partial record header of %d bytes: %w", len(b), ErrShort)
	}
	n := int64(binary.LittleEndian.Uint32(b))
	if n > int64(len(b)-fr) {
		return Record{}, fmt.Errorf("record of %d bytes, %d left: %w", n, len(b)-fr, ErrShort)
	}
	if err := f.checkBody(int(n)); err != nil {
		return Record{}, err
	}
	end := int64(fr) + n
	r := Record{Off: off, Size: end, Prefix: b[fr-f.Prefix : fr], Body: b[fr:end]}
	if f.CRC && crc32.Checksum(b[8:end], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return Record{}, ErrChecksum
	}
	return r, nil
}

// ReadAt reads the record at off in r whose body is n bytes long, as a
// segment's index recorded it, and checks its length and CRC. A record
// cut short returns an error wrapping io.EOF or io.ErrUnexpectedEOF; a
// changed one ErrCorrupt or ErrChecksum.
func (f Format) ReadAt(r io.ReaderAt, off int64, n int) (Record, error) {
	buf := make([]byte, f.RecordSize(n))
	if _, err := r.ReadAt(buf, off); err != nil {
		return Record{}, fmt.Errorf("read record at %d: %w", off, err)
	}
	if got := binary.LittleEndian.Uint32(buf); int64(got) != int64(n) {
		return Record{}, fmt.Errorf("record at %d holds %d bytes, want %d: %w", off, got, n, ErrCorrupt)
	}
	rec, err := f.parse(buf, off)
	if err != nil {
		return Record{}, fmt.Errorf("record at %d: %w", off, err)
	}
	return rec, nil
}
