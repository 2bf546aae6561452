package segfile

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzScan scans arbitrary data as a segment of either test format. The
// committed seeds (testdata/fuzz/FuzzScan) are segments written by the
// code before this package: a block segment of `tapir-sensor
// --blocks-out` (plain framing) and a spool segment (CRC framing), whole,
// cut and flipped. Scan must not panic, must cover the data exactly with
// records and damage, and must hand on only records whose framing and
// CRC hold.
func FuzzScan(f *testing.F) {
	for _, crc := range []bool{false, true} {
		fm := plainFormat
		if crc {
			fm = crcFormat
		}
		data := fm.Header()
		for seq := uint64(1); seq <= 4; seq++ {
			prefix, body := testRecord(fm, seq, int(seq)*11)
			data = append(fm.appendFraming(data, prefix, body), body...)
			f.Add(crc, data)
		}
		f.Add(crc, data[:len(data)-3])
	}
	f.Fuzz(func(t *testing.T, crc bool, data []byte) {
		fm := plainFormat
		if crc {
			fm = crcFormat
		}
		// Accept the magic of the seeds' real formats too, so the
		// committed segments are scanned whole.
		if len(data) >= HeaderSize {
			fm.Magic, fm.Version = string(data[:4]), data[4]
		}
		s := testScanner(fm)
		s.Check = nil // frame checks only: the fuzzer should reach records
		var got scanned
		err := s.Scan(data, func(r Record) error {
			got.recs = append(got.recs, r)
			b := data[r.Off : r.Off+r.Size]
			if n := int(binary.LittleEndian.Uint32(b)); n != len(r.Body) || int64(fm.RecordSize(n)) != r.Size {
				t.Fatalf("record at %d: length %d, body %d, size %d", r.Off, n, len(r.Body), r.Size)
			}
			if fm.CRC && crc32.Checksum(b[8:], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
				t.Fatalf("record at %d handed on with a bad CRC", r.Off)
			}
			if !bytes.Equal(b[len(b)-len(r.Body):], r.Body) {
				t.Fatalf("record at %d: body does not alias the data", r.Off)
			}
			return nil
		}, func(d Damage) { got.damage = append(got.damage, d) })
		if err != nil {
			if len(got.recs)+len(got.damage) > 0 {
				t.Fatalf("error %v after records", err)
			}
			return
		}
		checkCoverage(t, data, got)
	})
}
