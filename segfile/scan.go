package segfile

import "fmt"

// Damage is a stretch of a segment that could not be read as records.
type Damage struct {
	Off int64 // where it starts
	Len int64 // its length in bytes
	// Tail: it runs to the end of the segment (no intact record follows):
	// a crash mid-write, or damage in the last records. Otherwise intact
	// records follow it and were read.
	Tail bool
	// Err says why the record at Off could not be read: ErrShort (cut),
	// ErrChecksum, ErrTooLarge, or the error of Scanner.Check.
	Err error
}

// Error describes the damage.
func (d Damage) Error() string {
	what := "skipped"
	if d.Tail {
		what = "tail"
	}
	return fmt.Sprintf("%d bytes at %d %s: %v", d.Len, d.Off, what, d.Err)
}

// Unwrap returns Err.
func (d Damage) Unwrap() error { return d.Err }

// Scanner reads the records of segments held in memory. Its hooks let a
// format check what the framing cannot. A Scanner holds no state between
// calls to Scan; it is safe for concurrent use if its hooks are.
type Scanner struct {
	Format Format
	// Plausible, if set, is a cheap test run at every offset while the
	// scanner looks for the next intact record after damage, before the
	// length and CRC are checked, so that a search through garbage stays
	// linear. rec is the data after the candidate's length and CRC: its
	// prefix (at least Format.Prefix bytes are there), then its body.
	Plausible func(rec []byte) bool
	// Check, if set, validates a record whose framing and CRC are intact;
	// an error makes it damage. found is true for a candidate found by
	// searching past damage: a format without a CRC should check such a
	// record fully, since a false match would hide the records after it.
	Check func(r Record, found bool) error
}

// Scan checks data's header, then calls fn for every record and damage
// (if not nil) for every damaged stretch, in segment order. Records and
// damage together cover data after the header exactly. Scan returns
// ErrNotSegment or ErrVersion for a bad header, otherwise only fn's
// error, which stops it.
func (s *Scanner) Scan(data []byte, fn func(Record) error, damage func(Damage)) error {
	if err := s.Format.validate(); err != nil {
		return err
	}
	if err := s.Format.CheckHeader(data); err != nil {
		return err
	}
	if damage == nil {
		damage = func(Damage) {}
	}
	off := HeaderSize
	for off < len(data) {
		r, err := s.at(data, off, false)
		if err == nil {
			if err := fn(r); err != nil {
				return err
			}
			off += int(r.Size)
			continue
		}
		next := s.resync(data, off+1)
		if next < 0 {
			damage(Damage{Off: int64(off), Len: int64(len(data) - off), Tail: true, Err: err})
			return nil
		}
		damage(Damage{Off: int64(off), Len: int64(next - off), Err: err})
		off = next
	}
	return nil
}

// at reads and checks the record at off.
func (s *Scanner) at(data []byte, off int, found bool) (Record, error) {
	r, err := s.Format.parse(data[off:], int64(off))
	if err == nil && s.Check != nil {
		err = s.Check(r, found)
	}
	return r, err
}

// resync returns the offset at or after from of the next intact record,
// or -1 if there is none.
func (s *Scanner) resync(data []byte, from int) int {
	lenCRC := s.Format.framing() - s.Format.Prefix
	for off := from; off+s.Format.framing() <= len(data); off++ {
		if s.Plausible != nil && !s.Plausible(data[off+lenCRC:]) {
			continue
		}
		if _, err := s.at(data, off, true); err == nil {
			return off
		}
	}
	return -1
}
