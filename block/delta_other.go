//go:build !amd64

package block

// diffMask64 is diffMask of two full spans (portable version).
func diffMask64(x, y *[deltaSpan]byte) uint64 { return diffMaskGeneric(x, y) }

// gatherChanged writes the bytes of src selected by mask to the front of
// out and returns their number (portable version).
func gatherChanged(out []byte, src *[deltaSpan]byte, mask uint64) int {
	return gatherGeneric(out, src, mask)
}

// prefetchMax is how much of a body prefetchBody would ask for.
const prefetchMax = 32 << 10

// prefetchBody is a no-op without the amd64 prefetch kernel.
func prefetchBody([]byte) {}
