package flowindex

import (
	"bytes"
	"encoding/binary"
	"fmt"
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

// suffixBit marks the postings of a name's domain suffixes.
const suffixBit = 0x80

// maxSuffixes bounds the domain suffixes posted per name.
const maxSuffixes = 8

// hourLen is the width of the posting's time bucket, seqLen of its flush
// sequence number.
const (
	hourLen = 4
	seqLen  = 8
)

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
// 0x01, at most MaxTerm bytes.
func normalize(dst []byte, s string) []byte {
	n := min(len(s), MaxTerm)
	for i := 0; i < n; i++ {
		c := s[i]
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
func appendTerm(dst []byte, f *Field, v Value) []byte {
	switch f.Kind {
	case KindKeyword:
		return append(normalize(dst, v.S), 0)
	case KindIP:
		a, _ := flow.AddrFromNetip(v.A)
		return append(dst, a[:]...)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v.N)^1<<63)
}

// Builder builds the postings of a batch of records. Each flush writes
// one record table, key BatchKey(seq) (table byte, ID 0, the flush's
// sequence number), whose value is the row keys (RecordKeyLen bytes
// each) of the batch's records, and one posting per (field ID, hour,
// term) of the batch: key table byte, ID, hour, term, seq; value the
// ordinals of the term's records in the record table, increasing, as
// uvarint deltas. Grouping keeps the keys a batch writes few (the
// memtable's cost is per key) where records share values, and ordinals
// keep postings small (about a byte per record). Not safe for
// concurrent use.
type Builder struct {
	buf    []byte
	ends   []int // end of each term prefix of the current record in buf
	vals   []Value
	groups map[string]*group // term prefix -> ordinals
	order  []string
	recs   []byte // the batch's record keys
	// Seq numbers flushes; the store starts it at a value no earlier
	// flush used (its clock at open).
	Seq uint64
}

// group is the ordinals of one term's records in a batch.
type group struct {
	ords []byte // uvarint deltas
	last uint64
}

// BatchKey returns the key of the record table of flush seq.
func BatchKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{Table, 0}, seq)
}

// Add adds the postings of r, whose record row key (without its table
// byte) is recKey: one per distinct term (fields sharing an ID and
// holding the same value make one posting).
func (b *Builder) Add(r *flow.Record, recKey []byte) {
	if b.groups == nil {
		b.groups = map[string]*group{}
	}
	ord := uint64(len(b.recs) / RecordKeyLen)
	b.recs = append(b.recs, recKey...)
	hour := Hour(r.Start)
	b.buf, b.ends = b.buf[:0], b.ends[:0]
	for _, f := range indexed {
		b.vals = f.get(r, b.vals[:0])
		for _, v := range b.vals {
			if f.indexIf != nil && !f.indexIf(v) {
				continue
			}
			b.term(f.ID, hour, f, v)
			if f.Suffix {
				b.suffixes(f, hour, v.S)
			}
		}
	}
	start := 0
	for _, end := range b.ends {
		g := b.groups[string(b.buf[start:end])] // no allocation
		if g == nil {
			t := string(b.buf[start:end])
			g = &group{}
			b.groups[t] = g
			b.order = append(b.order, t)
			g.ords = binary.AppendUvarint(g.ords, ord)
		} else {
			g.ords = binary.AppendUvarint(g.ords, ord-g.last)
		}
		g.last = ord
		start = end
	}
}

// suffixes adds the terms of a name's domain suffixes: what follows each
// of its dots ("example.com" and "com" of "www.example.com").
func (b *Builder) suffixes(f *Field, hour uint32, name string) {
	for i, n := 0, 0; i < len(name) && n < maxSuffixes; i++ {
		if name[i] == '.' && i+1 < len(name) {
			b.term(f.ID|suffixBit, hour, f, Value{S: name[i+1:]})
			n++
		}
	}
}

// term appends a term prefix unless the record has it already.
func (b *Builder) term(id byte, hour uint32, f *Field, v Value) {
	start := 0
	if n := len(b.ends); n > 0 {
		start = b.ends[n-1]
	}
	b.buf = appendHead(b.buf, id, hour)
	b.buf = appendTerm(b.buf, f, v)
	key, prev := b.buf[start:], 0
	for _, end := range b.ends {
		if bytes.Equal(b.buf[prev:end], key) {
			b.buf = b.buf[:start]
			return
		}
		prev = end
	}
	b.ends = append(b.ends, len(b.buf))
}

// Len returns how many keys Flush would write.
func (b *Builder) Len() int { return len(b.order) + min(len(b.recs), 1) }

// Flush calls fn with the key and value of the record table and of every
// posting added since the last Flush, then forgets them. fn's slices are
// valid during the call only.
func (b *Builder) Flush(fn func(key, value []byte) error) error {
	defer func() {
		clear(b.groups)
		b.order, b.recs = b.order[:0], b.recs[:0]
	}()
	if len(b.recs) == 0 {
		return nil
	}
	b.Seq++
	if err := fn(BatchKey(b.Seq), b.recs); err != nil {
		return err
	}
	var key []byte
	for _, t := range b.order {
		key = binary.BigEndian.AppendUint64(append(key[:0], t...), b.Seq)
		if err := fn(key, b.groups[t].ords); err != nil {
			return err
		}
	}
	return nil
}

// PostingSeq returns the flush sequence number of a posting, whose
// record table is at BatchKey(seq).
func PostingSeq(key []byte) (uint64, error) {
	if len(key) < 2+hourLen+seqLen || key[0] != Table || key[1] == 0 {
		return 0, fmt.Errorf("malformed search index posting key %x", key)
	}
	return binary.BigEndian.Uint64(key[len(key)-seqLen:]), nil
}

// EachOrdinal calls fn with the ordinal of every record of a posting
// (value), in increasing order, without its record table, or returns an
// error naming a malformed posting. RecordKeyAt resolves an ordinal.
func EachOrdinal(key, value []byte, fn func(ord uint64) error) error {
	var ord uint64
	for i := 0; len(value) > 0; i++ {
		d, n := binary.Uvarint(value)
		if n <= 0 {
			return fmt.Errorf("malformed search index posting %x", key)
		}
		value = value[n:]
		if i > 0 && d == 0 {
			return fmt.Errorf("malformed search index posting %x: repeated record", key)
		}
		ord += d
		if err := fn(ord); err != nil {
			return err
		}
	}
	return nil
}

// RecordKeyAt returns the row key of record ord of a record table, or an
// error when the table is malformed or shorter.
func RecordKeyAt(table []byte, ord uint64) ([]byte, error) {
	if len(table)%RecordKeyLen != 0 || ord >= uint64(len(table)/RecordKeyLen) {
		return nil, fmt.Errorf("malformed search index: record %d of a record table of %d bytes", ord, len(table))
	}
	return table[ord*RecordKeyLen : (ord+1)*RecordKeyLen], nil
}

// Term is one index lookup: the records whose field f has a value equal
// to Value, or, with Prefix, starting with it (a keyword prefix; the
// first Bits bits of an address), or, with Suffix, a name with the
// domain suffix Value (what follows one of its dots; a field with
// Field.Suffix).
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
		id |= suffixBit
	}
	lower := appendHead(nil, id, hour)
	switch {
	case f.Kind == KindKeyword && t.Prefix:
		lower = normalize(lower, t.Value.S)
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
	lower = appendTerm(lower, f, t.Value)
	if f.Kind == KindKeyword && len(t.Value.S) >= MaxTerm {
		lower = lower[:len(lower)-1] // cut values: match every continuation
	}
	return Range{lower, prefixEnd(lower)}
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
