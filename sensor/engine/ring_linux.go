package engine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page (x86-64, arm64 with 4
// KiB base pages).
const hugePage = 2 << 20

// Ring pages are mapped outside the Go heap: they are long-lived and would
// otherwise double the heap the garbage collector lets grow (GOGC) and be
// scanned for nothing. The kernel backs them lazily with zero pages, so no
// memclr either. When mapping fails (out of address space) a page comes
// from the heap instead, marked by a capacity one larger than its length
// so that freePage leaves it to the collector.

// newPage maps an n-byte ring page.
func newPage(n int) []byte {
	if p := mmap(n); p != nil {
		return p
	}
	return make([]byte, n, n+1)
}

// newPagePair maps two ring pages as one 2 MiB-aligned region advised as
// a transparent huge page (MADV_HUGEPAGE): the ring then costs one page
// fault per 2 MiB instead of 512, and reading packets back from it, which
// jumps between pages, one TLB entry per 2 MiB. Where huge pages are off
// the advice is ignored and the pages are ordinary ones.
func newPagePair() (a, b []byte) {
	m := mmap(2 * hugePage)
	if 2*ringPage != hugePage || m == nil {
		munmap(m)
		return newPage(ringPage), newPage(ringPage)
	}
	off := int(-uintptr(unsafe.Pointer(&m[0])) & (hugePage - 1))
	p := m[off : off+hugePage : off+hugePage]
	munmap(m[:off])
	munmap(m[off+hugePage:])
	_ = unix.Madvise(p, unix.MADV_HUGEPAGE) // advice only
	return p[:ringPage:ringPage], p[ringPage:]
}

// freePage returns a page from newPage or newPagePair to the kernel.
func freePage(p []byte) {
	if cap(p) != len(p) {
		return // a heap page (newPage's fallback): the collector frees it
	}
	munmap(p)
}

// mmap maps n bytes of anonymous memory; nil when it fails.
func mmap(n int) []byte {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// munmap returns a range of a mapping from mmap to the kernel.
func munmap(p []byte) {
	if len(p) == 0 {
		return
	}
	_ = unix.MunmapPtr(unsafe.Pointer(&p[0]), uintptr(len(p))) // only fails for a range that is not mapped
}
