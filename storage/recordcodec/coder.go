package recordcodec

import (
	"fmt"
	"iter"
	"math"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxField is the highest field number a message of the layout may use:
// the decoder indexes each message's fields in an array this long.
const maxField = 31

// maxDepth bounds how deep the layout nests messages (Record, Enrichment,
// EndpointEnrichment, Geo: 4).
const maxDepth = 6

// index locates the fields of one message: pos[n] is 0 when field n is
// absent, else 1 + the offset of its last occurrence's tag in data (the
// last occurrence wins, as in protobuf). Fields numbered above maxField
// are skipped: only a newer writer uses them.
type index struct {
	data []byte
	pos  [maxField + 1]uint32
}

// parse indexes the fields of the message b, checking that every field
// is well formed.
func (x *index) parse(b []byte) error {
	if len(b) >= math.MaxUint32 {
		return fmt.Errorf("%w: message of %d bytes", ErrCorrupt, len(b))
	}
	x.data, x.pos = b, [maxField + 1]uint32{}
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return fmt.Errorf("%w: bad field tag at byte %d", ErrCorrupt, off)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return fmt.Errorf("%w: field %d at byte %d: %w", ErrCorrupt, num, off, protowire.ParseError(m))
		}
		if num <= maxField {
			x.pos[num] = uint32(off) + 1
		}
		off += n + m
	}
	return nil
}

// field returns the wire type and the encoded value (after the tag) of
// field n's last occurrence.
func (x *index) field(n protowire.Number) (protowire.Type, []byte, bool) {
	p := x.pos[n]
	if p == 0 {
		return 0, nil, false
	}
	b := x.data[p-1:]
	_, typ, k := protowire.ConsumeTag(b)
	return typ, b[k:], true
}

// all yields the wire type and encoded value of every occurrence of field
// n, in order: the elements of a repeated field.
func (x *index) all(n protowire.Number) iter.Seq2[protowire.Type, []byte] {
	return func(yield func(protowire.Type, []byte) bool) {
		if x.pos[n] == 0 {
			return
		}
		for b := x.data; len(b) > 0; {
			num, typ, k := protowire.ConsumeTag(b) // parse checked every field
			m := protowire.ConsumeFieldValue(num, typ, b[k:])
			if num == n && !yield(typ, b[k:k+m]) {
				return
			}
			b = b[k+m:]
		}
	}
}

// A coder walks a record's fields in the order the layout (schema.go)
// lists them, either appending each to buf (encoding) or setting it from
// the message being decoded. Because both directions run the same schema
// functions, the layout is written down once. The first error stops
// nothing but is the one reported.
type coder struct {
	dec   bool
	buf   []byte          // encoding: the output
	marks [maxDepth]int   // encoding: where each open message's length byte is
	stack [maxDepth]index // decoding: the open messages, stack[depth] the current
	depth int
	err   error
}

// coders keeps coders for reuse: a coder escapes to the heap (the schema
// hands it to function values) and is a kilobyte large.
var coders = sync.Pool{New: func() any { return new(coder) }}

// getCoder returns a coder ready to decode (dec) or to append to buf.
func getCoder(dec bool, buf []byte) *coder {
	c := coders.Get().(*coder)
	c.dec, c.buf, c.depth, c.err = dec, buf, 0, nil
	return c
}

// putCoder returns c to the pool, keeping no reference to the caller's
// memory.
func putCoder(c *coder) {
	c.buf, c.err = nil, nil
	for i := range c.stack {
		c.stack[i].data = nil
	}
	coders.Put(c)
}

// corrupt records a decoding error.
func (c *coder) corrupt(n protowire.Number, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: field %d at depth %d: %s", ErrCorrupt, n, c.depth, fmt.Sprintf(format, args...))
	}
}

// unencodable records an encoding error.
func (c *coder) unencodable(n protowire.Number, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: field %d at depth %d: %s", ErrUnencodable, n, c.depth, fmt.Sprintf(format, args...))
	}
}

// value returns the encoded value of field n in the current message when
// it is present with wire type want.
func (c *coder) value(n protowire.Number, want protowire.Type) ([]byte, bool) {
	if n > maxField {
		panic(fmt.Sprintf("recordcodec: field number %d above maxField", n)) // a schema bug, caught by every test
	}
	typ, b, ok := c.stack[c.depth].field(n)
	if !ok {
		return nil, false
	}
	if typ != want {
		c.corrupt(n, "wire type %d, want %d", typ, want)
		return nil, false
	}
	return b, true
}

// varint reads field n as a varint.
func (c *coder) varint(n protowire.Number) (uint64, bool) {
	b, ok := c.value(n, protowire.VarintType)
	if !ok {
		return 0, false
	}
	v, _ := protowire.ConsumeVarint(b) // parse checked it
	return v, true
}

// bytesOf reads field n as length-delimited bytes (aliasing the input).
func (c *coder) bytesOf(n protowire.Number) ([]byte, bool) {
	b, ok := c.value(n, protowire.BytesType)
	if !ok {
		return nil, false
	}
	v, _ := protowire.ConsumeBytes(b)
	return v, true
}

// str codes a string (absent when empty).
func (c *coder) str(n protowire.Number, p *string) {
	if !c.dec {
		if *p != "" {
			c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
			c.buf = protowire.AppendString(c.buf, *p)
		}
		return
	}
	if b, ok := c.bytesOf(n); ok {
		*p = string(b)
	}
}

// strings codes the strings ps as fields first, first+1, and so on.
func (c *coder) strings(first protowire.Number, ps ...*string) {
	for i, p := range ps {
		c.str(first+protowire.Number(i), p)
	}
}

// bytes codes a byte slice (absent when empty; a copy when decoded).
func (c *coder) bytes(n protowire.Number, p *[]byte) {
	if !c.dec {
		if len(*p) > 0 {
			c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
			c.buf = protowire.AppendBytes(c.buf, *p)
		}
		return
	}
	if b, ok := c.bytesOf(n); ok && len(b) > 0 {
		*p = append([]byte(nil), b...)
	}
}

// fixed codes a byte array that must come back with its length (absent
// when all zero).
func (c *coder) fixed(n protowire.Number, p []byte) {
	if !c.dec {
		for _, x := range p {
			if x != 0 {
				c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
				c.buf = protowire.AppendBytes(c.buf, p)
				return
			}
		}
		return
	}
	if b, ok := c.bytesOf(n); ok {
		if len(b) != len(p) {
			c.corrupt(n, "%d bytes, want %d", len(b), len(p))
			return
		}
		copy(p, b)
	}
}

// boolean codes a bool (absent when false).
func (c *coder) boolean(n protowire.Number, p *bool) {
	if !c.dec {
		if *p {
			c.buf = protowire.AppendTag(c.buf, n, protowire.VarintType)
			c.buf = protowire.AppendVarint(c.buf, 1)
		}
		return
	}
	if v, ok := c.varint(n); ok {
		*p = v != 0
	}
}

// double codes a float64 as 8 bytes (absent when its bits are zero, so
// -0 and NaN payloads come back as they were).
func (c *coder) double(n protowire.Number, p *float64) {
	if !c.dec {
		if bits := math.Float64bits(*p); bits != 0 {
			c.buf = protowire.AppendTag(c.buf, n, protowire.Fixed64Type)
			c.buf = protowire.AppendFixed64(c.buf, bits)
		}
		return
	}
	if b, ok := c.value(n, protowire.Fixed64Type); ok {
		v, _ := protowire.ConsumeFixed64(b)
		*p = math.Float64frombits(v)
	}
}

// appendVarint writes field n as a varint (absent when 0).
func (c *coder) appendVarint(n protowire.Number, v uint64) {
	if v != 0 {
		c.buf = protowire.AppendTag(c.buf, n, protowire.VarintType)
		c.buf = protowire.AppendVarint(c.buf, v)
	}
}

// unsigned codes an unsigned integer as a varint (absent when 0),
// rejecting on decode a value its type cannot hold.
func unsigned[T ~uint8 | ~uint16 | ~uint32 | ~uint64](c *coder, n protowire.Number, p *T) {
	if !c.dec {
		c.appendVarint(n, uint64(*p))
		return
	}
	if v, ok := c.varint(n); ok {
		if uint64(T(v)) != v {
			c.corrupt(n, "%d out of range", v)
			return
		}
		*p = T(v)
	}
}

// unsigneds codes the integers ps as fields first, first+1, and so on.
func unsigneds[T ~uint8 | ~uint16 | ~uint32 | ~uint64](c *coder, first protowire.Number, ps ...*T) {
	for i, p := range ps {
		unsigned(c, first+protowire.Number(i), p)
	}
}

// signed codes a signed integer as a zigzag varint (absent when 0),
// rejecting on decode a value its type cannot hold.
func signed[T ~int | ~int64](c *coder, n protowire.Number, p *T) {
	if !c.dec {
		c.appendVarint(n, protowire.EncodeZigZag(int64(*p)))
		return
	}
	if v, ok := c.varint(n); ok {
		s := protowire.DecodeZigZag(v)
		if int64(T(s)) != s {
			c.corrupt(n, "%d out of range", s)
			return
		}
		*p = T(s)
	}
}

// enum codes *p as its index in codes, the format's own numbering (absent
// when the index is 0, so an absent field decodes to codes[0]).
func enum[T comparable](c *coder, n protowire.Number, p *T, codes []T) {
	if !c.dec {
		for i, v := range codes {
			if v == *p {
				c.appendVarint(n, uint64(i))
				return
			}
		}
		c.unencodable(n, "no code for %v", *p)
		return
	}
	*p = codes[0]
	if v, ok := c.varint(n); ok {
		if v >= uint64(len(codes)) {
			c.corrupt(n, "unknown code %d", v)
			return
		}
		*p = codes[v]
	}
}

// moment codes a time as nanoseconds since base (Unix nanoseconds),
// zigzag-encoded; absent when the time is zero, present (even when 0)
// otherwise. It returns the time's Unix nanoseconds (0 for the zero
// time), the base for the times that follow it. The difference wraps
// around in 64 bits, which the decoder undoes exactly.
func (c *coder) moment(n protowire.Number, p *time.Time, base int64) int64 {
	if !c.dec {
		if p.IsZero() {
			return 0
		}
		ns := p.UnixNano()
		if !time.Unix(0, ns).Equal(*p) {
			c.unencodable(n, "time %v not in Unix nanoseconds' range", *p)
			return 0
		}
		c.buf = protowire.AppendTag(c.buf, n, protowire.VarintType)
		c.buf = protowire.AppendVarint(c.buf, protowire.EncodeZigZag(ns-base))
		return ns
	}
	v, ok := c.varint(n)
	if !ok {
		return 0
	}
	ns := base + protowire.DecodeZigZag(v)
	*p = time.Unix(0, ns).UTC()
	return ns
}

// strs codes a repeated string, one field occurrence per element (empty
// elements included).
func (c *coder) strs(n protowire.Number, p *[]string) {
	if !c.dec {
		for _, s := range *p {
			c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
			c.buf = protowire.AppendString(c.buf, s)
		}
		return
	}
	for v := range c.elements(n) {
		*p = append(*p, string(v))
	}
}

// elements yields the contents of every occurrence of the
// length-delimited field n (a repeated string or message), stopping at
// one of another wire type.
func (c *coder) elements(n protowire.Number) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for typ, b := range c.stack[c.depth].all(n) {
			if typ != protowire.BytesType {
				c.corrupt(n, "element of wire type %d", typ)
				return
			}
			v, _ := protowire.ConsumeBytes(b)
			if !yield(v) {
				return
			}
		}
	}
}

// open starts nested message n: when encoding, if present, it writes the
// tag and reserves the length; when decoding, if the field is there, it
// makes the message current. It reports whether the caller should code
// the message's fields and then call close.
func (c *coder) open(n protowire.Number, present bool) bool {
	if !c.dec {
		if !present {
			return false
		}
		c.buf = protowire.AppendTag(c.buf, n, protowire.BytesType)
		return c.push(n, nil)
	}
	b, ok := c.bytesOf(n)
	return ok && c.push(n, b)
}

// push enters a nested message: when encoding, it reserves one byte for
// its length; when decoding, it indexes b.
func (c *coder) push(n protowire.Number, b []byte) bool {
	if c.depth+1 >= maxDepth {
		c.corrupt(n, "messages nested too deep")
		return false
	}
	c.depth++
	if !c.dec {
		c.marks[c.depth] = len(c.buf)
		c.buf = append(c.buf, 0)
		return true
	}
	if err := c.stack[c.depth].parse(b); err != nil {
		c.depth--
		if c.err == nil {
			c.err = fmt.Errorf("field %d: %w", n, err)
		}
		return false
	}
	return true
}

// close ends the current nested message; when encoding, it writes the
// message's length where open reserved a byte, moving the message when
// the length takes more than one.
func (c *coder) close() {
	if !c.dec {
		mark := c.marks[c.depth]
		size := len(c.buf) - mark - 1
		if k := protowire.SizeVarint(uint64(size)); k > 1 {
			c.buf = append(c.buf, make([]byte, k-1)...)
			copy(c.buf[mark+k:], c.buf[mark+1:mark+1+size])
		}
		protowire.AppendVarint(c.buf[:mark], uint64(size))
	}
	c.depth--
}

// message codes the nested message n held by *p (nil: absent), whose
// fields fields codes; decoding allocates it.
func message[T any](c *coder, n protowire.Number, p **T, fields func(*coder, *T)) {
	if !c.open(n, *p != nil) {
		return
	}
	if c.dec {
		*p = new(T)
	}
	fields(c, *p)
	c.close()
}

// embedded codes the nested message n held in *p by value; present says
// whether to write it (a zero value need not be).
func embedded[T any](c *coder, n protowire.Number, p *T, present bool, fields func(*coder, *T)) {
	if c.open(n, present) {
		fields(c, p)
		c.close()
	}
}

// repeated codes a repeated message, one field occurrence per element.
func repeated[T any](c *coder, n protowire.Number, p *[]T, fields func(*coder, *T)) {
	if !c.dec {
		for i := range *p {
			embedded(c, n, &(*p)[i], true, fields)
		}
		return
	}
	for v := range c.elements(n) {
		var e T
		if !c.push(n, v) {
			return
		}
		fields(c, &e)
		c.close()
		*p = append(*p, e)
	}
}
