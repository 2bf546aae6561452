package engine

import (
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/sensor/capture"
)

// aheadFlows is the number of open flows from which a worker reads
// packets ahead of its work (see aheadQueue): below it the flow table's
// index and entries stay in the CPU's caches and copying each packet
// would cost more than the misses it hides.
const aheadFlows = 16384

// aheadDepth is how many packets a worker holds, read and decoded, ahead
// of the one it handles: the newest one's index slot is being loaded, the
// one before's flow entry, and the one before that's neighbours in the
// flow table's activity list and the line of the ring its packet links.
const aheadDepth = 3

// aheadPacket is a packet read ahead: its bytes copied out of the
// source's buffer (valid only until the next read), its capture info and
// its decoding.
type aheadPacket struct {
	buf    []byte
	ci     capture.CaptureInfo
	dec    decode.Decoder // holds the packet's decoding
	common bool           // dec reported a common frame
}

// aheadQueue holds the packets a worker has read ahead of its work at a
// busy tap (many open flows, a cache miss or two per packet for the flow
// table's index slot and entry): each packet is decoded when it is read
// and its flow's slot prefetched, its entry one packet later, so the
// misses overlap the work on the packets before it. Packets are handled
// in the order read, each exactly as without the queue.
type aheadQueue struct {
	q    [aheadDepth + 1]aheadPacket
	head int // oldest held packet
	n    int // packets held
}

// push reads data into the queue (copying it), decodes it and starts
// loading its flow's index slot and the previous packet's flow entry. The
// queue must not be full.
func (w *worker) push(data []byte, ci capture.CaptureInfo) {
	a := &w.ahead
	e := &a.q[(a.head+a.n)%len(a.q)]
	a.n++
	e.buf = append(e.buf[:0], data...)
	e.ci = ci
	e.dec.SetOptions(w.dec)
	e.common = e.dec.Decode(decode.LinkType(ci.LinkType), e.buf)
	if prefetchable(&e.dec.Packet) {
		w.table.PrefetchSlot(&e.dec.Packet.Tuple)
	}
	if a.n >= 2 {
		if p := &a.q[(a.head+a.n-2)%len(a.q)].dec.Packet; prefetchable(p) {
			w.table.PrefetchEntry(&p.Tuple)
		}
	}
	if a.n >= 3 {
		if p := &a.q[(a.head+a.n-3)%len(a.q)].dec.Packet; prefetchable(p) {
			if st := w.table.PrefetchLinks(&p.Tuple); st != nil && st.tail != 0 {
				w.ring.prefetch(st.tail)
			}
		}
	}
}

// prefetchable reports whether the flow table finds p's flow by p.Tuple
// (an IP packet that is not a non-first fragment).
func prefetchable(p *decode.Packet) bool {
	return p.HasTuple && !(p.IsFragment && p.FragOffset != 0)
}

// popOldest handles the oldest held packet and returns its time.
func (w *worker) popOldest() int64 {
	a := &w.ahead
	e := &a.q[a.head]
	a.head = (a.head + 1) % len(a.q)
	a.n--
	w.aheadPkts++
	w.handle(&e.dec.Packet, e.common, e.buf, &e.ci)
	return e.ci.Timestamp
}

// drainAhead handles every held packet, oldest first, with the checks
// run makes after each packet.
func (w *worker) drainAhead() {
	for w.ahead.n > 0 && w.sinkErr == nil {
		w.afterPacket(w.popOldest())
	}
}
