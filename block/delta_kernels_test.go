package block

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// checkKernels compares the delta-coding kernels (assembly on amd64)
// with their portable versions on two 64-byte spans.
func checkKernels(t *testing.T, x, y *[deltaSpan]byte) {
	t.Helper()
	mask := diffMask64(x, y)
	if want := diffMaskGeneric(x, y); mask != want {
		t.Fatalf("diffMask64 = %#x, portable %#x\nx %x\ny %x", mask, want, x, y)
	}
	for i := range deltaSpan {
		if (x[i] != y[i]) != (mask&(1<<i) != 0) {
			t.Fatalf("mask bit %d = %v, bytes %#x %#x", i, mask&(1<<i) != 0, x[i], y[i])
		}
	}
	got := bytes.Repeat([]byte{0xEE}, deltaSpan+gatherSlack)
	want := make([]byte, deltaSpan)
	n := gatherChanged(got, x, mask)
	m := gatherGeneric(want, x, mask)
	if n != m || !bytes.Equal(got[:n], want[:m]) {
		t.Fatalf("gatherChanged = %x (%d), portable %x (%d), mask %#x", got[:n], n, want[:m], m, mask)
	}
}

// TestKernelsMatchGeneric runs the kernels on every pair of consecutive
// packet heads of real captures and on random masks.
func TestKernelsMatchGeneric(t *testing.T) {
	var prev [deltaSpan]byte
	for _, rel := range []string{"zeek/ssh.pcap", "zeek/get.pcap", "tcpdump/dns_tcp.pcap"} {
		for _, p := range loadCapture(t, rel) {
			var cur [deltaSpan]byte
			copy(cur[:], p.data)
			checkKernels(t, &cur, &prev)
			prev = cur
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var x, y [deltaSpan]byte
		for i := range x {
			x[i] = byte(r.Uint32())
		}
		y = x
		flip := r.Uint64() & r.Uint64() // about a quarter of the bytes differ
		if r.IntN(8) == 0 {
			flip = r.Uint64() // and sometimes most of them
		}
		for i := range deltaSpan {
			if flip&(1<<i) != 0 {
				y[i] ^= byte(1 + r.IntN(255))
			}
		}
		checkKernels(t, &x, &y)
	}
}

// FuzzKernels compares the kernels with their portable versions on
// fuzzed spans: the first 64 bytes against the next 64 (zero-padded).
func FuzzKernels(f *testing.F) {
	f.Add(make([]byte, 2*deltaSpan))
	seed := make([]byte, 2*deltaSpan)
	binary.LittleEndian.PutUint64(seed, 0x0123456789abcdef)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var x, y [deltaSpan]byte
		copy(x[:], b)
		if len(b) > deltaSpan {
			copy(y[:], b[deltaSpan:])
		}
		checkKernels(t, &x, &y)
	})
}

// TestPrefetchBodyAnyLength runs the prefetch hint over bodies of every
// length and alignment around the cache line and the cap: it must only
// hint, never fault or change the bytes.
func TestPrefetchBodyAnyLength(t *testing.T) {
	buf := make([]byte, prefetchMax+256)
	for i := range buf {
		buf[i] = byte(i)
	}
	for off := range 65 {
		for _, n := range []int{0, 1, 63, 64, 65, 127, 4096, prefetchMax - 1, prefetchMax, prefetchMax + 100} {
			prefetchBody(buf[off : off+n])
		}
	}
	for i := range buf {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
}
