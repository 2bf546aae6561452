package flowindex

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Table is the keyspace of postings in a store that keeps every table in
// one keyspace (Pebble).
// (It is rowkey.Table 'i'; this package cannot import storage/rowkey,
// which imports storage.)
const Table byte = 'i'

// MaxTerm is the longest keyword term kept in a posting; longer values
// are cut (lookups of them then yield a superset).
const MaxTerm = 64

// RecordKeyLen is the length of the record row key (without its table
// byte) that ends every posting: rowkey.RecordKeyLen, start bucket (8)
// and flow ID (16).
const RecordKeyLen = 8 + 16

// reverseBit marks the postings of reversed keyword values.
const reverseBit = 0x80

// hourLen is the width of the posting's time bucket.
const hourLen = 4

// Hour returns the posting bucket of a time: hours since the Unix epoch
// (0 before it).
func Hour(t time.Time) uint32 {
	h := t.Unix() / 3600
	if h < 0 {
		return 0
	}
	return uint32(min(h, 1<<32-1))
}

// HourOfNanos is Hour for Unix nanoseconds.
func HourOfNanos(ns int64) uint32 { return Hour(time.Unix(0, ns)) }

// appendHead appends the table byte, the field ID and the hour.
func appendHead(dst []byte, id byte, hour uint32) []byte {
	dst = append(dst, Table, id)
	return binary.BigEndian.AppendUint32(dst, hour)
}

// normalize appends the keyword's index form: ASCII lower case, NUL as
// 0x01, reversed when rev, at most MaxTerm bytes.
func normalize(dst []byte, s string, rev bool) []byte {
	n := min(len(s), MaxTerm)
	for i := 0; i < n; i++ {
		j := i
		if rev {
			j = len(s) - 1 - i
		}
		c := s[j]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == 0:
			c = 1
		}
		dst = append(dst, c)
	}
	return dst
}

// appendTerm appends the term of a value of f (a keyword's ends with a
// NUL; addresses and numbers have a fixed width).
func appendTerm(dst []byte, f *Field, v Value, rev bool) []byte {
	switch f.Kind {
	case KindKeyword:
		return append(normalize(dst, v.S, rev), 0)
	case KindIP:
		a, _ := flow.AddrFromNetip(v.A)
		return append(dst, a[:]...)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v.N)^1<<63)
}

// Poster builds the postings of records; one per writer, not safe for
// concurrent use.
type Poster struct {
	buf  []byte
	vals []Value
}

// Postings calls fn with the key of every posting of r, whose record row
// key (without its table byte) is recKey. fn's key is valid during the
// call only.
func (p *Poster) Postings(r *flow.Record, recKey []byte, fn func(key []byte) error) error {
	hour := Hour(r.Start)
	for _, f := range indexed {
		p.vals = f.get(r, p.vals[:0])
		for _, v := range p.vals {
			if err := p.emit(f.ID, hour, f, v, false, recKey, fn); err != nil {
				return err
			}
			if f.Suffix {
				if err := p.emit(f.ID|reverseBit, hour, f, v, true, recKey, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (p *Poster) emit(id byte, hour uint32, f *Field, v Value, rev bool, recKey []byte, fn func([]byte) error) error {
	p.buf = appendHead(p.buf[:0], id, hour)
	p.buf = appendTerm(p.buf, f, v, rev)
	p.buf = append(p.buf, recKey...)
	return fn(p.buf)
}

// Term is one index lookup: the records whose field f has a value equal
// to Value, or, with Prefix, starting with it (a keyword prefix; the
// first Bits bits of an address), or, with Suffix, ending with it (a
// keyword of a field with Field.Suffix).
type Term struct {
	Field  *Field
	Value  Value
	Prefix bool
	Suffix bool
	Bits   int
}

// Lookup is an index lookup a query compiles to: a Term, an All
// (intersection) or an Any (union).
type Lookup interface{ lookup() }

// All is the records every lookup yields.
type All []Lookup

// Any is the records some lookup yields.
type Any []Lookup

func (Term) lookup() {}
func (All) lookup()  {}
func (Any) lookup()  {}

// Range is the key range of a term's postings in one hour: [Lower,
// Upper). Every key in it ends with a record row key.
type Range struct{ Lower, Upper []byte }

// Ranges returns the key ranges holding the term's postings from hour lo
// to hour hi, one per hour.
func (t Term) Ranges(lo, hi uint32) []Range {
	out := make([]Range, 0, hi-lo+1)
	for h := lo; ; h++ {
		out = append(out, t.rangeAt(h))
		if h == hi {
			break
		}
	}
	return out
}

func (t Term) rangeAt(hour uint32) Range {
	f := t.Field
	id := f.ID
	if t.Suffix {
		id |= reverseBit
	}
	lower := appendHead(nil, id, hour)
	switch {
	case f.Kind == KindKeyword && (t.Prefix || t.Suffix):
		lower = normalize(lower, t.Value.S, t.Suffix)
		return Range{lower, prefixEnd(lower)}
	case f.Kind == KindIP && t.Prefix:
		a, _ := flow.AddrFromNetip(t.Value.A)
		bits := t.Bits
		if t.Value.A.Is4() {
			bits += 96
		}
		lower = append(lower, a[:bits/8]...)
		return Range{lower, prefixEnd(lower)}
	}
	lower = appendTerm(lower, f, t.Value, false)
	if f.Kind == KindKeyword && len(t.Value.S) >= MaxTerm {
		lower = lower[:len(lower)-1] // cut values: match every continuation
	}
	return Range{lower, prefixEnd(lower)}
}

// RecordKey returns the record row key (without its table byte) that
// ends a posting key.
func RecordKey(posting []byte) ([]byte, bool) {
	if len(posting) < 2+hourLen+RecordKeyLen || posting[0] != Table {
		return nil, false
	}
	return posting[len(posting)-RecordKeyLen:], true
}

// Prefix returns the IP prefix as a Term value and bits.
func Prefix(f *Field, p netip.Prefix) Term {
	return Term{Field: f, Value: Value{A: p.Addr()}, Prefix: true, Bits: p.Bits()}
}

// prefixEnd returns the smallest key greater than every key starting
// with prefix (nil: none, the prefix is all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
