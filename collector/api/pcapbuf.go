package api

import (
	"bufio"
	"io"
	"sync"

	"github.com/tapir-sensor/tapir/pcapio"
)

// writeBufs lends the pcap answers their write buffers, of
// pcapio.WriteBufferSize so that pcapio uses them as they are instead of
// allocating its own. A buffer of that size allocated (and zeroed) per answer was most of the bytes a
// retrieval allocated: 256 KiB against about 40 KiB for everything else,
// a garbage collection every few dozen requests, which the requests then
// shared the CPU with.
type writeBufs struct{ p sync.Pool }

// get returns a buffer writing to w.
func (b *writeBufs) get(w io.Writer) *bufio.Writer {
	bw, ok := b.p.Get().(*bufio.Writer)
	if !ok {
		return bufio.NewWriterSize(w, pcapio.WriteBufferSize)
	}
	bw.Reset(w)
	return bw
}

// put takes back a buffer the answer no longer uses, dropping what it
// still held and its writer.
func (b *writeBufs) put(bw *bufio.Writer) {
	bw.Reset(nil)
	b.p.Put(bw)
}
