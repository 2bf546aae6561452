package block

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// Packet delta coding.
//
// The packets of one flow repeat most of their headers: addresses, ports,
// TTL, flags and most of the sequence numbers are the same from one
// packet to the next, while a few bytes (IP ID, checksums, sequence and
// acknowledgment numbers, TCP timestamps) change. A general-purpose
// compressor finds those repeats too, but as many short matches, which is
// where its CPU time goes on header-heavy traffic. Delta coding removes
// them first, in one cheap pass: each packet's first deltaSpan bytes are
// compared with one of the two previous packets of the block (the one
// before is the other direction's packet in a request/response exchange),
// and only a bitmap of the bytes that differ plus those bytes are kept.
// The compressor then sees a body less than half as long.
//
// A delta-coded body is, per packet in capture order:
//
//	varint  timestamp delta, as in the raw body
//	uvarint original length
//	uvarint captured length n
//	byte    reference r: 0 = the packet follows whole (n bytes);
//	        1 = the previous packet, 2 = the one before it
//	when r > 0, with h = min(n, deltaSpan, captured length of the
//	reference packet):
//	  ceil(h/8) bytes  bitmap, least significant bit first: bit j set
//	                   means byte j differs from the reference's byte j
//	  k bytes          the differing bytes in order (k = bits set)
//	  n-h bytes        the rest of the packet
//
// Bits of the bitmap at or beyond h are zero; a decoder rejects anything
// else, so every packet sequence has exactly one delta coding per choice
// of references.

// deltaSpan is how many leading bytes of a packet are delta coded: enough
// for Ethernet, IPv4 and a TCP header with timestamps, and one uint64
// bitmap.
const deltaSpan = 64

// appendDeltaPacket appends the reference byte and the coded bytes of
// data to dst, given the previous packet and the one before it (nil when
// there is none; only their first deltaSpan bytes are read).
func appendDeltaPacket(dst, data, prev, prev2 []byte) []byte {
	ref, mask, h := byte(0), uint64(0), 0
	if prev != nil {
		if prev2 != nil && len(data) >= 8 && len(prev) >= 8 && len(prev2) >= 8 &&
			binary.LittleEndian.Uint64(data) != binary.LittleEndian.Uint64(prev) &&
			binary.LittleEndian.Uint64(data) == binary.LittleEndian.Uint64(prev2) {
			// The first 8 bytes (an Ethernet destination and half the
			// source) say the packet before the previous one is this
			// direction's: compare with it alone.
			prev, prev2, ref = prev2, nil, 1
		}
		if len(data) >= deltaSpan && len(prev) >= deltaSpan {
			// diffMask's common case, without its call.
			mask, h = diffMask64((*[deltaSpan]byte)(data), (*[deltaSpan]byte)(prev)), deltaSpan
		} else {
			mask, h = diffMaskShort(data, prev), min(len(data), deltaSpan, len(prev))
		}
		ref++
		// The packet before the previous one is the same direction's in
		// a request/response exchange: try it when the previous one
		// differs in more than 16 bytes, as a packet of the other
		// direction does (swapped MAC addresses alone are 12).
		if prev2 != nil && bits.OnesCount64(mask) > 16 {
			if m2 := diffMask(data, prev2); bits.OnesCount64(m2) < bits.OnesCount64(mask) {
				ref, mask, h = ref+1, m2, min(len(data), deltaSpan, len(prev2))
			}
		}
		// Worth it only when bitmap and differing bytes are shorter than
		// the bytes they stand for.
		if (h+7)/8+bits.OnesCount64(mask) >= h {
			ref, h = 0, 0
		}
	}
	// A coded packet is at most one byte longer than the packet: grow
	// once and write by index, without append's capacity checks (plus
	// the gatherSlack bytes the gathering may write past its bytes,
	// overwritten or cut off after).
	dst = slices.Grow(dst, len(data)+1+gatherSlack)
	w := len(dst)
	out := dst[:cap(dst)]
	out[w] = ref
	w++
	if ref != 0 {
		if h == deltaSpan {
			// The common case, a packet and reference of at least 64
			// bytes. Bitmap and changed bytes take fewer than h = 64
			// bytes (the worth-it test above), so with the gather's
			// slack they fit in the len(data)+1+gatherSlack >= 73
			// bytes out has from w.
			binary.LittleEndian.PutUint64(out[w:], mask)
			w += 8 + gatherChanged(out[w+8:], (*[deltaSpan]byte)(data), mask)
		} else {
			for i := 0; i < (h+7)/8; i++ {
				out[w] = byte(mask >> (8 * i))
				w++
			}
			for m := mask; m != 0; m &= m - 1 {
				out[w] = data[bits.TrailingZeros64(m)]
				w++
			}
		}
	}
	w += copy(out[w:], data[h:])
	return out[:w]
}

// diffMask returns the bitmap of the bytes among the first
// min(len(a), len(b), deltaSpan) that differ between a and b.
func diffMask(a, b []byte) uint64 {
	if len(a) >= deltaSpan && len(b) >= deltaSpan {
		return diffMask64((*[deltaSpan]byte)(a), (*[deltaSpan]byte)(b))
	}
	return diffMaskShort(a, b)
}

// diffMaskShort is diffMask when a or b is shorter than deltaSpan (out
// of line, so that diffMask inlines into its callers).
func diffMaskShort(a, b []byte) uint64 {
	h := min(len(a), len(b), deltaSpan)
	var mask uint64
	i := 0
	for ; i+8 <= h; i += 8 {
		x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
		mask |= nonzeroBytes(x) << i
	}
	for ; i < h; i++ {
		if a[i] != b[i] {
			mask |= 1 << i
		}
	}
	return mask
}

// diffMaskGeneric is diffMask64 in portable Go.
func diffMaskGeneric(x, y *[deltaSpan]byte) uint64 {
	var mask uint64
	for i := 0; i < deltaSpan; i += 8 {
		mask |= nonzeroBytes(binary.LittleEndian.Uint64(x[i:])^binary.LittleEndian.Uint64(y[i:])) << i
	}
	return mask
}

// gatherSlack is how many bytes past the gathered ones gatherChanged may
// write (whole 8-byte groups).
const gatherSlack = 8

// gatherGeneric is gatherChanged in portable Go: one byte per set bit.
func gatherGeneric(out []byte, src *[deltaSpan]byte, mask uint64) int {
	o := out[:bits.OnesCount64(mask)]
	for k, m := 0, mask; m != 0; m &= m - 1 {
		o[k] = src[bits.TrailingZeros64(m)&(deltaSpan-1)]
		k++
	}
	return len(o)
}

// nonzeroBytes returns a byte whose bit k is set when byte k of x is not
// zero.
func nonzeroBytes(x uint64) uint64 {
	const low7, high = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	t := ((x & low7) + low7 | x) & high
	return (t >> 7) * 0x0102040810204080 >> 56
}

// undelta appends the raw body coded by the delta body d to dst. It
// checks every field, so a corrupt d yields an error wrapping ErrCorrupt
// (or ErrTooLarge when the raw body would exceed limit bytes), never a
// panic.
func undelta(dst, d []byte, limit int) ([]byte, error) {
	start := len(dst)
	prev, prev2 := -1, -1 // offsets in dst of the previous packets' bytes
	prevLen, prev2Len := 0, 0
	for p := 0; p < len(d); {
		q := p
		if _, n := binary.Varint(d[q:]); n > 0 {
			q += n
		} else {
			return dst, fmt.Errorf("delta body: timestamp at %d: %w", p, ErrCorrupt)
		}
		ol, n := binary.Uvarint(d[q:])
		if n <= 0 {
			return dst, fmt.Errorf("delta body: length at %d: %w", q, ErrCorrupt)
		}
		q += n
		cl, n := binary.Uvarint(d[q:])
		if n <= 0 || cl > ol || ol > 1<<31 {
			return dst, fmt.Errorf("delta body: lengths at %d: %w", q, ErrCorrupt)
		}
		q += n
		if q >= len(d) {
			return dst, fmt.Errorf("delta body: reference at %d: %w", q, ErrShort)
		}
		ref := d[q]
		q++
		if len(dst)-start+(q-1-p)+int(cl) > limit {
			return dst, fmt.Errorf("delta body decodes to more than %d bytes: %w", limit, ErrTooLarge)
		}
		dst = append(dst, d[p:q-1]...)
		off := len(dst)
		switch ref {
		case 0:
			if uint64(len(d)-q) < cl {
				return dst, fmt.Errorf("delta body: packet of %d bytes at %d: %w", cl, q, ErrCorrupt)
			}
			dst = append(dst, d[q:q+int(cl)]...)
			q += int(cl)
		case 1, 2:
			r, rl := prev, prevLen
			if ref == 2 {
				r, rl = prev2, prev2Len
			}
			if r < 0 {
				return dst, fmt.Errorf("delta body: reference %d before packet %d: %w", ref, ref, ErrCorrupt)
			}
			h := min(int(cl), deltaSpan, rl)
			nb := (h + 7) / 8
			if len(d)-q < nb {
				return dst, fmt.Errorf("delta body: bitmap at %d: %w", q, ErrCorrupt)
			}
			var mask uint64
			for i := range nb {
				mask |= uint64(d[q+i]) << (8 * i)
			}
			q += nb
			if h < 64 && mask>>h != 0 {
				return dst, fmt.Errorf("delta body: bitmap bits beyond %d bytes at %d: %w", h, q-nb, ErrCorrupt)
			}
			k := bits.OnesCount64(mask)
			rest := int(cl) - h
			if len(d)-q < k+rest {
				return dst, fmt.Errorf("delta body: packet at %d: %w", q, ErrCorrupt)
			}
			dst = append(dst, dst[r:r+h]...)
			pkt := dst[off:]
			for m := mask; m != 0; m &= m - 1 {
				pkt[bits.TrailingZeros64(m)] = d[q]
				q++
			}
			dst = append(dst, d[q:q+rest]...)
			q += rest
		default:
			return dst, fmt.Errorf("delta body: reference %d at %d: %w", ref, q-1, ErrCorrupt)
		}
		prev, prev2 = off, prev
		prevLen, prev2Len = int(cl), prevLen
		p = q
	}
	return dst, nil
}
