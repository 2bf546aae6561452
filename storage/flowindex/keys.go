package flowindex

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
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
// keep postings small (about a byte per record). Postings are written
// in the order their terms first appeared in the batch.
//
// Its buffers are reused from batch to batch: once warm, Add and Flush
// allocate nothing. Not safe for concurrent use.
type Builder struct {
	buf  []byte // the current record's term prefixes
	ends []int  // end of each term prefix of the current record in buf
	vals []Value
	// terms holds the batch's distinct term prefixes, groups their
	// places in terms (first-seen order) and table finds them.
	terms  []byte
	groups []group
	table  termTable
	// hits is one (group, ordinal) per posting, in the order of Add
	// (ordinals increasing); Flush sorts them by group into ords.
	hits []hit
	ords []uint32
	pos  []uint32
	out  []byte
	recs []byte // the batch's record keys
	// Seq numbers flushes; the store starts it at a value no earlier
	// flush used (its clock at open).
	Seq uint64
}

// group is one distinct term prefix of a batch: terms[start:end], and
// how many of the batch's records have it.
type group struct {
	start, end int
	n          int
}

// hit is one record (its ordinal in the batch) having a group's term.
type hit struct {
	group int32
	ord   uint32
}

// termTable finds a batch's groups by the hash of their term: open
// addressing, linear probing, at most half full.
type termTable struct {
	seed  maphash.Seed
	slots []termSlot
	n     int
}

// termSlot is a term's hash and its group index plus one (0: empty).
type termSlot struct {
	hash  uint64
	group int32
}

// minTableSlots is a new table's size (a power of two).
const minTableSlots = 1024

// hash returns the hash of term.
func (t *termTable) hash(term []byte) uint64 {
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
		t.slots = make([]termSlot, minTableSlots)
	}
	return maphash.Bytes(t.seed, term)
}

// find returns the group whose hash is h and for which eq holds, or -1
// and the empty slot where insert must put it.
func (t *termTable) find(h uint64, eq func(group int32) bool) (slot int, group int32) {
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s.group == 0 {
			return i, -1
		}
		if s.hash == h && eq(s.group-1) {
			return i, s.group - 1
		}
	}
}

// insert puts group (hash h) in the empty slot find returned.
func (t *termTable) insert(slot int, h uint64, group int32) {
	t.slots[slot] = termSlot{hash: h, group: group + 1}
	t.n++
	if 2*t.n > len(t.slots) {
		t.grow()
	}
}

// grow doubles the table.
func (t *termTable) grow() {
	old := t.slots
	t.slots = make([]termSlot, 2*len(old))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s.group == 0 {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].group != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// reset empties the table, keeping its size.
func (t *termTable) reset() {
	clear(t.slots)
	t.n = 0
}

// BatchKey returns the key of the record table of flush seq.
func BatchKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{Table, 0}, seq)
}

// Add adds the postings of r, whose record row key (without its table
// byte) is recKey: one per distinct term (fields sharing an ID and
// holding the same value make one posting).
func (b *Builder) Add(r *flow.Record, recKey []byte) {
	ord := uint32(len(b.recs) / RecordKeyLen)
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
		g := b.group(b.buf[start:end])
		b.groups[g].n++
		b.hits = append(b.hits, hit{group: g, ord: ord})
		start = end
	}
}

// group returns the index of term's group, adding one when the batch
// has not seen the term.
func (b *Builder) group(term []byte) int32 {
	h := b.table.hash(term)
	slot, g := b.table.find(h, func(g int32) bool {
		gr := &b.groups[g]
		return bytes.Equal(b.terms[gr.start:gr.end], term)
	})
	if g >= 0 {
		return g
	}
	g = int32(len(b.groups))
	b.groups = append(b.groups, group{start: len(b.terms), end: len(b.terms) + len(term)})
	b.terms = append(b.terms, term...)
	b.table.insert(slot, h, g)
	return g
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
func (b *Builder) Len() int { return len(b.groups) + min(len(b.recs), 1) }

// Flush calls fn with the key and value of the record table and of every
// posting added since the last Flush, then forgets them. fn's slices are
// valid during the call only.
func (b *Builder) Flush(fn func(key, value []byte) error) error {
	defer b.reset()
	if len(b.recs) == 0 {
		return nil
	}
	b.Seq++
	if err := fn(BatchKey(b.Seq), b.recs); err != nil {
		return err
	}
	b.sortHits()
	var key []byte
	from := 0
	for i := range b.groups {
		g := &b.groups[i]
		key = binary.BigEndian.AppendUint64(append(key[:0], b.terms[g.start:g.end]...), b.Seq)
		b.out = appendOrdinals(b.out[:0], b.ords[from:from+g.n])
		from += g.n
		if err := fn(key, b.out); err != nil {
			return err
		}
	}
	return nil
}

// sortHits fills ords with the hits' ordinals grouped by group (groups
// in order, ordinals increasing within each): a stable counting sort.
func (b *Builder) sortHits() {
	b.pos = b.pos[:0]
	at := uint32(0)
	for i := range b.groups { // pos[g]: where group g's next ordinal goes
		b.pos = append(b.pos, at)
		at += uint32(b.groups[i].n)
	}
	b.ords = slices.Grow(b.ords[:0], len(b.hits))[:len(b.hits)]
	for _, h := range b.hits {
		b.ords[b.pos[h.group]] = h.ord
		b.pos[h.group]++
	}
}

// appendOrdinals appends ords (increasing) as uvarint deltas.
func appendOrdinals(dst []byte, ords []uint32) []byte {
	var last uint32
	for _, o := range ords {
		dst = binary.AppendUvarint(dst, uint64(o-last))
		last = o
	}
	return dst
}

// reset forgets the batch, keeping the buffers.
func (b *Builder) reset() {
	b.terms, b.groups, b.hits, b.recs = b.terms[:0], b.groups[:0], b.hits[:0], b.recs[:0]
	b.table.reset()
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
