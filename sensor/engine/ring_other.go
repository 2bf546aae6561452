//go:build !linux

package engine

// newPage allocates an n-byte ring page.
func newPage(n int) []byte { return make([]byte, n) }

// freePage drops a page from newPage (the collector frees it).
func freePage([]byte) {}

// newPagePair allocates two ring pages.
func newPagePair() (a, b []byte) { return newPage(ringPage), newPage(ringPage) }
