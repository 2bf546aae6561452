package engine

import "syscall"

// newPage maps an n-byte ring page outside the Go heap: pages are
// long-lived and would otherwise double the heap the garbage collector
// lets grow (GOGC) and be scanned for nothing. The kernel backs them
// lazily with zero pages, so no memclr either.
func newPage(n int) []byte {
	p, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n) // out of address space: the heap will do
	}
	return p
}

// freePage returns a page from newPage to the kernel.
func freePage(p []byte) {
	if syscall.Munmap(p) != nil {
		return // a heap page (newPage's fallback): the collector frees it
	}
}
