package block

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

// The two per-packet loops of delta coding in assembly: the 64-byte
// difference mask with SSE2 compares (every amd64 CPU has SSE2), and the
// gathering of the changed bytes with one PSHUFB per 8-byte group (SSSE3
// and POPCNT, checked at start-up; the portable loop runs otherwise).
// TestKernelsMatchGeneric and FuzzKernels compare them with the portable
// versions.

// diffMask64 is diffMask of two full spans.
//
//go:noescape
func diffMask64(x, y *[deltaSpan]byte) uint64

// gather64 writes the bytes of src whose bit is set in mask to dst, in
// order, and returns their number. It writes up to 8 bytes past them:
// dst must have room for popcount(mask)+8 bytes.
//
//go:noescape
func gather64(dst *byte, src *[deltaSpan]byte, mask uint64) int

// gatherShuffle[m] is the PSHUFB control that moves the bytes of an
// 8-byte group selected by the bits of m to its front.
var gatherShuffle [256]uint64

var haveGather64 = cpu.X86.HasSSSE3 && cpu.X86.HasPOPCNT

func init() {
	for m := range 256 {
		var ctl uint64
		k := 0
		for j := range 8 {
			if m&(1<<j) != 0 {
				ctl |= uint64(j) << (8 * k)
				k++
			}
		}
		gatherShuffle[m] = ctl
	}
}

// gatherChanged writes the bytes of src selected by mask to the front of
// out (which needs popcount(mask)+gatherSlack bytes) and returns their
// number.
func gatherChanged(out []byte, src *[deltaSpan]byte, mask uint64) int {
	if haveGather64 {
		_ = out[bits.OnesCount64(mask)+gatherSlack-1] // room for the 8-byte stores
		return gather64(&out[0], src, mask)
	}
	return gatherGeneric(out, src, mask)
}

// prefetchBytes asks the CPU to start loading the n bytes at p, every
// cache line at once, without waiting for them.
//
//go:noescape
func prefetchBytes(p *byte, n int)

// prefetchBody starts loading the start of b, up to prefetchMax bytes,
// before a pass that reads it front to back (see Encode); past that the
// hardware prefetcher keeps up with the stream.
func prefetchBody(b []byte) {
	if len(b) > 0 {
		prefetchBytes(&b[0], min(len(b), prefetchMax))
	}
}

// prefetchMax is how much of a body prefetchBody asks for.
const prefetchMax = 32 << 10
