package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Format constants.
const (
	Magic   = "TBLK" // first bytes of every encoded block
	Version = 1      // format version written by this package

	codecRaw  = 0
	codecZstd = 1
	codecS2   = 2
	// codecMask selects the compression in the codec byte; flagDelta
	// marks a delta-coded body (see delta.go).
	codecMask = 0x0f
	flagDelta = 0x10

	// fixedHeader is the size of the header up to the CommunityID length.
	fixedHeader = 104
	// MinHeader is the smallest possible header (empty strings).
	MinHeader = fixedHeader + 3 + 4 + 4

	// MaxRawBody bounds the uncompressed body a decoder accepts, so a
	// corrupt or hostile length cannot make it allocate without limit.
	MaxRawBody = 64 << 20
)

// Errors returned by decoding. Every decoding error wraps one of them.
var (
	ErrCorrupt  = errors.New("block: corrupt block")
	ErrChecksum = errors.New("block: checksum mismatch")
	ErrVersion  = errors.New("block: unsupported format version")
	ErrMagic    = errors.New("block: bad magic")
	ErrShort    = errors.New("block: truncated block")
	ErrTooLarge = errors.New("block: body larger than limit")
	ErrEmpty    = errors.New("block: no packets to encode")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Level is a zstd compression level.
type Level = zstd.EncoderLevel

// Compression levels for EncoderConfig.Level.
const (
	SpeedFastest = zstd.SpeedFastest
	SpeedDefault = zstd.SpeedDefault
	SpeedBetter  = zstd.SpeedBetterCompression
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// Level is the zstd level; SpeedFastest by default.
	Level Level
	// WindowSize is the zstd window in bytes (a power of two from 1 KiB);
	// default 128 KiB, the sensor's default block size: a window as large
	// as the block loses no match and is faster than zstd's default.
	WindowSize int
	// S2 compresses with S2 (klauspost/compress/s2) instead of zstd:
	// several times faster per byte, about 5 % larger output once delta
	// coded. The default (DefaultEncoderConfig), as the sensor's
	// blocks.compression; false selects zstd at Level.
	S2 bool
	// NoDelta stores bodies without packet delta coding, as blocks were
	// before it (Builder codes packets as they are appended; see
	// delta.go). For tests of old-format readers; costs CPU and space.
	NoDelta bool
}

// DefaultEncoderConfig returns the default encoder configuration: S2,
// the sensor's default blocks.compression (Level and WindowSize apply
// when S2 is turned off).
func DefaultEncoderConfig() EncoderConfig {
	return EncoderConfig{Level: SpeedFastest, WindowSize: 128 << 10, S2: true}
}

// Validate checks the configuration.
func (c EncoderConfig) Validate() error {
	if c.Level < zstd.SpeedFastest || c.Level > zstd.SpeedBestCompression {
		return fmt.Errorf("block encoder: unknown zstd level %d", c.Level)
	}
	if c.WindowSize != 0 && (c.WindowSize < zstd.MinWindowSize || c.WindowSize > zstd.MaxWindowSize || c.WindowSize&(c.WindowSize-1) != 0) {
		return fmt.Errorf("block encoder: window size %d is not a power of two from %d", c.WindowSize, zstd.MinWindowSize)
	}
	return nil
}

// Encoder compresses block bodies. It holds one zstd encoder and its
// buffers. An Encoder is NOT safe for concurrent use: keep one per worker.
type Encoder struct {
	z       *zstd.Encoder
	s2      bool
	noDelta bool
	scratch []byte // raw body when noDelta
}

// NewEncoder returns an Encoder for the configuration.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.Level == 0 {
		cfg.Level = SpeedFastest
	}
	if cfg.WindowSize == 0 {
		cfg.WindowSize = 128 << 10
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(cfg.Level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), // the block has its own CRC32C
		zstd.WithZeroFrames(true),
		zstd.WithWindowSize(cfg.WindowSize),
		// At the fastest level literals are not Huffman-coded: small blocks
		// (closed by age for freshness) then cost a third less CPU for a few
		// percent of size (measured on the shared captures: 0.42 -> 0.44 of
		// the pcap).
		zstd.WithNoEntropyCompression(cfg.Level == SpeedFastest),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return &Encoder{z: z, s2: cfg.S2, noDelta: cfg.NoDelta}, nil
}

// Close releases the encoder's resources.
func (e *Encoder) Close() error { return e.z.Close() }

// Builder accumulates the packets of one flow into a block. A Builder is
// not safe for concurrent use. It is meant to be reused: Reset keeps its
// buffer, so Append does not allocate once the buffer has grown to the
// block size. A fresh Builder holds no buffer (about 250 bytes), so many
// idle ones are cheap.
type Builder struct {
	meta  Meta
	prev  int64
	first int64  // the first packet's timestamp (the body's delta base)
	buf   []byte // delta-coded body
	// refs hold the first deltaSpan bytes of the last two packets, the
	// references of delta coding: refs[last] is the previous packet's.
	refs   [2][deltaSpan]byte
	refLen [2]uint8
	last   uint8
}

// Reset starts a new block described by meta. First, Last, Packets and
// Bytes of meta are ignored; they are computed from the appended packets.
func (b *Builder) Reset(meta Meta) {
	meta.First, meta.Last, meta.Packets, meta.Bytes = 0, 0, 0, 0
	b.meta = meta
	b.buf = b.buf[:0]
	b.prev = 0
}

// Release drops the builder's buffer so that an idle builder holds no
// memory; the next Append allocates again.
func (b *Builder) Release() { b.buf = nil }

// Append adds one packet: its timestamp in Unix nanoseconds, its original
// (wire) length and its captured bytes, which are copied. An origLen
// smaller than len(data) is raised to len(data).
func (b *Builder) Append(tsNanos int64, origLen int, data []byte) {
	if origLen < len(data) {
		origLen = len(data)
	}
	if b.meta.Packets == 0 {
		b.meta.First, b.meta.Last = tsNanos, tsNanos
		b.prev, b.first = tsNanos, tsNanos
	}
	// One capacity check for the three varints and the coded packet
	// (at most one byte longer than the packet, plus the gather's slack).
	if need := 3*binary.MaxVarintLen64 + len(data) + 1 + gatherSlack; cap(b.buf)-len(b.buf) < need {
		b.grow(need)
	}
	w := len(b.buf)
	out := b.buf[:cap(b.buf)]
	w += binary.PutVarint(out[w:], tsNanos-b.prev)
	if origLen < 0x80 {
		// Both lengths fit one varint byte (len(data) <= origLen): a
		// snap length under 128 or a short packet, without the loops.
		out[w], out[w+1] = byte(origLen), byte(len(data))
		w += 2
	} else {
		w += binary.PutUvarint(out[w:], uint64(origLen))
		w += binary.PutUvarint(out[w:], uint64(len(data)))
	}
	b.buf = out[:w]
	var prev, prev2 []byte
	if n := b.meta.Packets; n > 0 {
		prev = b.refs[b.last][:b.refLen[b.last]]
		if n > 1 {
			prev2 = b.refs[1-b.last][:b.refLen[1-b.last]]
		}
	}
	b.buf = appendDeltaPacket(b.buf, data, prev, prev2)
	b.last = 1 - b.last
	if len(data) >= deltaSpan {
		// A fixed-size copy: two 32-byte moves inline, where copy's
		// variable length called memmove on every packet.
		b.refs[b.last], b.refLen[b.last] = [deltaSpan]byte(data), deltaSpan
	} else {
		b.refLen[b.last] = uint8(copy(b.refs[b.last][:], data))
	}
	b.prev = tsNanos
	// First and Last are the earliest and latest timestamps: capture
	// files may step back in time (pcapng packets without a timestamp
	// read as 0, clock steps), and stores index blocks by that span.
	b.meta.First = min(b.meta.First, tsNanos)
	b.meta.Last = max(b.meta.Last, tsNanos)
	b.meta.Packets++
	b.meta.Bytes += uint64(len(data))
}

// minBuffer is the smallest buffer a Builder allocates.
const minBuffer = 4 << 10

// grow makes room for n more bytes, at least doubling the buffer (from
// minBuffer): append's growth of 1.25x past 256 bytes re-allocated and
// copied a block's body about 20 times on its way to blocks.max_bytes,
// each time zeroing the new buffer's tail (on the 10 M-packet input,
// growslice was 9 % of the sensor's CPU).
func (b *Builder) grow(n int) {
	c := max(2*cap(b.buf), len(b.buf)+n, minBuffer)
	b.buf = slices.Grow(b.buf, c-len(b.buf))
}

// Len returns the body size so far (delta coded, uncompressed), in bytes.
func (b *Builder) Len() int { return len(b.buf) }

// Cap returns the capacity of the builder's buffer: the memory it holds.
func (b *Builder) Cap() int { return cap(b.buf) }

// Packets returns the number of packets appended since Reset.
func (b *Builder) Packets() int { return int(b.meta.Packets) }

// First returns the first packet's timestamp (0 when empty).
func (b *Builder) First() int64 { return b.meta.First }

// Age returns how long the block has been open at now (Unix ns), measured
// from its first packet; 0 when empty.
func (b *Builder) Age(now int64) int64 {
	if b.meta.Packets == 0 {
		return 0
	}
	return now - b.meta.First
}

// Meta returns the block's metadata so far.
func (b *Builder) Meta() Meta { return b.meta }

// Encode appends the encoded block to dst and returns it with the block's
// Meta. It does not reset the builder. With a dst of enough capacity it
// does not allocate. The body is stored raw when zstd would not make it
// smaller.
func (b *Builder) Encode(enc *Encoder, dst []byte) ([]byte, Meta, error) {
	if b.meta.Packets == 0 {
		return dst, b.meta, ErrEmpty
	}
	if len(b.buf) > MaxRawBody {
		return dst, b.meta, fmt.Errorf("encode %d bytes: %w", len(b.buf), ErrTooLarge)
	}
	raw := b.buf
	if b.meta.First != b.first {
		// The body's first delta is from First: rewrite it (it was 0,
		// one byte) when an earlier packet came later. Rare: one copy.
		rebased := binary.AppendVarint(make([]byte, 0, len(raw)+10), b.first-b.meta.First)
		raw = append(rebased, raw[1:]...)
		if len(raw) > MaxRawBody {
			return dst, b.meta, fmt.Errorf("encode %d bytes: %w", len(raw), ErrTooLarge)
		}
	}
	flags := byte(flagDelta)
	if enc.noDelta {
		var err error
		if enc.scratch, err = undelta(enc.scratch[:0], raw, MaxRawBody); err != nil {
			return dst, b.meta, err
		}
		raw, flags = enc.scratch, 0
	}
	start := len(dst)
	dst = appendHeader(dst, &b.meta, len(raw))
	hdrEnd := len(dst)
	if enc.s2 {
		// A builder's body was written packet by packet over up to
		// blocks.max_age, among the other flows' packets: most of it
		// has left the cache. S2 reads it front to back, but a body of a
		// few KiB is too short for the hardware prefetcher to get ahead
		// (its loads were the costliest instructions of the encoder):
		// ask for every line at once.
		prefetchBody(raw)
		n := s2.MaxEncodedLen(len(raw))
		dst = slices.Grow(dst, n)
		out := s2.Encode(dst[hdrEnd:hdrEnd+n], raw)
		dst = dst[:hdrEnd+len(out)]
		dst[start+5] = codecS2 | flags
	} else {
		dst = enc.z.EncodeAll(raw, dst)
		dst[start+5] = codecZstd | flags
	}
	if len(dst)-hdrEnd >= len(raw) {
		dst = append(dst[:hdrEnd], raw...)
		dst[start+5] = codecRaw | flags
	}
	body := dst[hdrEnd:]
	binary.LittleEndian.PutUint32(dst[hdrEnd-8:], uint32(len(body)))
	crc := crc32.Update(0, castagnoli, dst[start:hdrEnd-4])
	crc = crc32.Update(crc, castagnoli, body)
	binary.LittleEndian.PutUint32(dst[hdrEnd-4:], crc)
	return dst, b.meta, nil
}

func appendStr(dst []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

// appendHeader appends the header with codec zstd and zero body length
// and CRC, which Encode patches.
func appendHeader(dst []byte, m *Meta, rawLen int) []byte {
	hlen := MinHeader + min(len(m.CommunityID), 255) + min(len(m.SensorID), 255) + min(len(m.Interface), 255)
	dst = append(dst, Magic...)
	dst = append(dst, Version, codecZstd)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(hlen))
	k := &m.Key
	dst = append(dst, k.A[:]...)
	dst = append(dst, k.B[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, k.PortA)
	dst = binary.LittleEndian.AppendUint16(dst, k.PortB)
	dst = append(dst, k.Proto, k.Family)
	dst = binary.LittleEndian.AppendUint16(dst, k.VLAN)
	dst = binary.LittleEndian.AppendUint16(dst, k.InnerVLAN)
	dst = append(dst, m.FlowID[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, m.LinkType)
	dst = binary.LittleEndian.AppendUint32(dst, m.Seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.First))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.Last))
	dst = binary.LittleEndian.AppendUint32(dst, m.Packets)
	dst = binary.LittleEndian.AppendUint64(dst, m.Bytes)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rawLen))
	dst = appendStr(dst, m.CommunityID)
	dst = appendStr(dst, m.SensorID)
	dst = appendStr(dst, m.Interface)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // body length
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC
	return dst
}

// header is a parsed block header.
type header struct {
	meta    Meta
	codec   byte
	delta   bool // the body is delta coded
	hlen    int
	rawLen  int
	bodyLen int
	crc     uint32
}

func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < 8 {
		return h, fmt.Errorf("header of %d bytes: %w", len(b), ErrShort)
	}
	if string(b[:4]) != Magic {
		return h, ErrMagic
	}
	if b[4] != Version {
		return h, fmt.Errorf("version %d: %w", b[4], ErrVersion)
	}
	h.codec, h.delta = b[5]&codecMask, b[5]&flagDelta != 0
	if b[5]&^(codecMask|flagDelta) != 0 || h.codec != codecRaw && h.codec != codecZstd && h.codec != codecS2 {
		return h, fmt.Errorf("codec %d: %w", h.codec, ErrCorrupt)
	}
	h.hlen = int(binary.LittleEndian.Uint16(b[6:]))
	if h.hlen < MinHeader {
		return h, fmt.Errorf("header length %d: %w", h.hlen, ErrCorrupt)
	}
	if len(b) < h.hlen {
		return h, fmt.Errorf("header of %d bytes, want %d: %w", len(b), h.hlen, ErrShort)
	}
	m := &h.meta
	k := &m.Key
	copy(k.A[:], b[8:24])
	copy(k.B[:], b[24:40])
	k.PortA = binary.LittleEndian.Uint16(b[40:])
	k.PortB = binary.LittleEndian.Uint16(b[42:])
	k.Proto, k.Family = b[44], b[45]
	k.VLAN = binary.LittleEndian.Uint16(b[46:])
	k.InnerVLAN = binary.LittleEndian.Uint16(b[48:])
	copy(m.FlowID[:], b[50:66])
	m.LinkType = binary.LittleEndian.Uint16(b[66:])
	m.Seq = binary.LittleEndian.Uint32(b[68:])
	m.First = int64(binary.LittleEndian.Uint64(b[72:]))
	m.Last = int64(binary.LittleEndian.Uint64(b[80:]))
	m.Packets = binary.LittleEndian.Uint32(b[88:])
	m.Bytes = binary.LittleEndian.Uint64(b[92:])
	h.rawLen = int(binary.LittleEndian.Uint32(b[100:]))
	p := fixedHeader
	end := h.hlen - 8
	for _, s := range []*string{&m.CommunityID, &m.SensorID, &m.Interface} {
		if p >= end {
			return h, fmt.Errorf("header strings: %w", ErrCorrupt)
		}
		n := int(b[p])
		p++
		if p+n > end {
			return h, fmt.Errorf("header strings: %w", ErrCorrupt)
		}
		*s = string(b[p : p+n])
		p += n
	}
	if p != end {
		return h, fmt.Errorf("header length %d does not match its fields: %w", h.hlen, ErrCorrupt)
	}
	h.bodyLen = int(binary.LittleEndian.Uint32(b[end:]))
	h.crc = binary.LittleEndian.Uint32(b[end+4:])
	if h.rawLen > MaxRawBody {
		return h, fmt.Errorf("raw body of %d bytes: %w", h.rawLen, ErrTooLarge)
	}
	if h.bodyLen > MaxRawBody+MaxRawBody/8 {
		return h, fmt.Errorf("body of %d bytes: %w", h.bodyLen, ErrTooLarge)
	}
	if h.codec == codecRaw && h.bodyLen != h.rawLen {
		return h, fmt.Errorf("raw body length %d != %d: %w", h.bodyLen, h.rawLen, ErrCorrupt)
	}
	if m.Packets == 0 {
		return h, fmt.Errorf("header counts: %w", ErrCorrupt)
	}
	return h, nil
}

// ParseMeta reads the header at the start of b without decompressing or
// checksumming the body, and returns the block's Meta and its total
// encoded length (header and body). b needs to hold only the header.
func ParseMeta(b []byte) (Meta, int, error) {
	h, err := parseHeader(b)
	if err != nil {
		return Meta{}, 0, err
	}
	return h.meta, h.hlen + h.bodyLen, nil
}

// Block is one decoded block: its Meta and its uncompressed body. A Block
// is immutable once decoded and safe for concurrent readers; each Reader
// is for one goroutine.
type Block struct {
	Meta Meta
	body []byte
}

// Body returns the uncompressed body (see the package doc). Do not modify.
func (b *Block) Body() []byte { return b.body }

var decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(MaxRawBody),
		zstd.WithDecoderMaxWindow(MaxRawBody),
	)
})

// Decode verifies and decodes the block at the start of b (b may hold
// more bytes after it; use ParseMeta for its length). It checks the CRC,
// decompresses the body and checks every packet record against the
// header, so that reading the returned Block cannot fail. Decode is safe
// for concurrent use; the Block does not alias b.
func Decode(b []byte) (*Block, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	total := h.hlen + h.bodyLen
	if len(b) < total {
		return nil, fmt.Errorf("block of %d bytes, want %d: %w", len(b), total, ErrShort)
	}
	body := b[h.hlen:total]
	crc := crc32.Update(0, castagnoli, b[:h.hlen-4])
	crc = crc32.Update(crc, castagnoli, body)
	if crc != h.crc {
		return nil, ErrChecksum
	}
	blk := &Block{Meta: h.meta}
	switch h.codec {
	case codecRaw:
		blk.body = append(make([]byte, 0, len(body)), body...)
	case codecZstd:
		d, err := decoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := d.DecodeAll(body, make([]byte, 0, h.rawLen))
		if err != nil {
			return nil, fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
		}
		if len(out) != h.rawLen {
			return nil, fmt.Errorf("body decompressed to %d bytes, want %d: %w", len(out), h.rawLen, ErrCorrupt)
		}
		blk.body = out
	case codecS2:
		n, err := s2.DecodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
		}
		if n != h.rawLen {
			return nil, fmt.Errorf("body decompresses to %d bytes, want %d: %w", n, h.rawLen, ErrCorrupt)
		}
		out, err := s2.Decode(make([]byte, n), body)
		if err != nil {
			return nil, fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
		}
		blk.body = out
	}
	if h.delta {
		out, err := undelta(make([]byte, 0, 2*len(blk.body)), blk.body, MaxRawBody)
		if err != nil {
			return nil, err
		}
		blk.body = out
	}
	if err := blk.check(); err != nil {
		return nil, err
	}
	return blk, nil
}

// check walks the body and compares it with the header.
func (b *Block) check() error {
	r := b.Reader()
	var n uint32
	var bytes uint64
	last, first := b.Meta.First, b.Meta.Last
	for {
		ts, _, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		n++
		bytes += uint64(len(data))
		last, first = max(last, ts), min(first, ts)
	}
	if n != b.Meta.Packets || bytes != b.Meta.Bytes || last != b.Meta.Last || first != b.Meta.First {
		return fmt.Errorf("body holds %d packets, %d bytes, span %d..%d; header says %d, %d, %d..%d: %w",
			n, bytes, first, last, b.Meta.Packets, b.Meta.Bytes, b.Meta.First, b.Meta.Last, ErrCorrupt)
	}
	return nil
}

// Reader iterates over the packets of a Block. Not safe for concurrent use.
type Reader struct {
	body []byte
	off  int
	ts   int64
}

// Reader returns an iterator positioned at the first packet.
func (b *Block) Reader() *Reader {
	r := &Reader{}
	r.Reset(b)
	return r
}

// Reset positions r at the first packet of b.
func (r *Reader) Reset(b *Block) {
	*r = Reader{body: b.body, ts: b.Meta.First}
}

// Next returns the next packet: timestamp (Unix ns), original length and
// captured bytes, which alias the block's body (do not modify; valid as
// long as the Block). It returns io.EOF after the last packet.
func (r *Reader) Next() (ts int64, origLen int, data []byte, err error) {
	if r.off >= len(r.body) {
		return 0, 0, nil, io.EOF
	}
	b := r.body[r.off:]
	d, n1 := binary.Varint(b)
	if n1 <= 0 {
		return 0, 0, nil, fmt.Errorf("packet timestamp at %d: %w", r.off, ErrCorrupt)
	}
	ol, n2 := binary.Uvarint(b[n1:])
	if n2 <= 0 {
		return 0, 0, nil, fmt.Errorf("packet length at %d: %w", r.off, ErrCorrupt)
	}
	cl, n3 := binary.Uvarint(b[n1+n2:])
	if n3 <= 0 {
		return 0, 0, nil, fmt.Errorf("packet length at %d: %w", r.off, ErrCorrupt)
	}
	p := n1 + n2 + n3
	if cl > ol || cl > uint64(len(b)-p) || ol > 1<<31 {
		return 0, 0, nil, fmt.Errorf("packet lengths %d/%d at %d: %w", cl, ol, r.off, ErrCorrupt)
	}
	r.off += p + int(cl)
	r.ts += d
	return r.ts, int(ol), b[p : p+int(cl) : p+int(cl)], nil
}
