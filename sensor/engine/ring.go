package engine

import (
	"encoding/binary"
	"unsafe"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
)

// The worker keeps the stored bytes of every open flow in one ring of
// pages, in arrival order (the layout of Arkime's and Stenographer's
// files): appending a packet is a sequential copy into the newest page,
// whatever the number of open flows, instead of a write into one of
// thousands of cold per-flow buffers. Each packet is linked to the next
// packet of its flow. A flow's waiting packets leave the ring as one
// ordinary packet block (package block: delta coded and compressed in one
// scratch builder that stays in cache) when they reach blocks.max_bytes,
// blocks.max_age after the first of them, when the flow ends (before its
// final record), or early, oldest first, when the ring holds the worker's
// share of blocks.max_buffered. A page is reused once every packet in it has
// left. While a worker has few flows, they get builders of their own
// instead (see directFlows). Memory, ring and builders together, is
// bounded by that one cap and follows bytes, not flows; the blocks, and
// so the stores and retrieval, are those of before.

// ringPage is the size of a page. A packet never spans two pages; a
// packet larger than a page gets a page of its own.
const ringPage = 1 << 20

// pktHeader is the size of a packet's header in a page: timestamp (8),
// original length (4), captured length (4), reference of the flow's next
// packet (8).
const pktHeader = 24

// pktRef locates a packet: page sequence number << 32 | offset. 0 is none.
type pktRef uint64

type page struct {
	buf  []byte
	seq  uint32
	live int32 // packets in the page that have not left
}

// pageRing is a worker's arrival-order packet store. Not safe for
// concurrent use.
type pageRing struct {
	pages []page // pages[head:] are in use, oldest first
	head  int
	used  int    // bytes used in the newest page
	next  uint32 // sequence number of the next new page (from 1)
	bytes int64  // bytes of the pages in use
	free  [][]byte
	// minFree is the fewest free pages since the last shrink: that many
	// were not needed.
	minFree int
	mapped  int // pages mapped over the ring's life
}

// held returns the bytes of the pages in use and of those kept for reuse.
func (r *pageRing) held() int64 { return r.inUse() + int64(len(r.free))*ringPage }

// inUse returns the bytes of the pages in use, the newest one as far as it
// is filled.
func (r *pageRing) inUse() int64 {
	n := r.bytes
	if r.head < len(r.pages) {
		n -= int64(len(r.pages[len(r.pages)-1].buf) - r.used)
	}
	return n
}

// put copies a packet into the newest page (a new one when it does not
// fit) and returns its reference.
func (r *pageRing) put(ts int64, origLen int, data []byte) pktRef {
	need := pktHeader + len(data)
	if r.head == len(r.pages) || r.used+need > len(r.pages[len(r.pages)-1].buf) {
		r.grow(need)
	}
	p := &r.pages[len(r.pages)-1]
	off := r.used
	b := p.buf[off : off+need]
	binary.LittleEndian.PutUint64(b, uint64(ts))
	binary.LittleEndian.PutUint32(b[8:], uint32(max(origLen, len(data))))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(data)))
	binary.LittleEndian.PutUint64(b[16:], 0)
	copy(b[pktHeader:], data)
	r.used += need
	p.live++
	return pktRef(uint64(p.seq)<<32 | uint64(off))
}

// grow starts a new page of at least need bytes.
func (r *pageRing) grow(need int) {
	if r.head > 64 && r.head*2 > len(r.pages) {
		n := copy(r.pages, r.pages[r.head:])
		clear(r.pages[n:])
		r.pages, r.head = r.pages[:n], 0
	}
	var buf []byte
	if need <= ringPage && len(r.free) > 0 {
		buf = r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
		r.minFree = min(r.minFree, len(r.free))
	} else if need <= ringPage {
		var spare []byte
		buf, spare = newPagePair()
		r.free = append(r.free, spare)
		r.mapped += 2
	} else {
		buf = newPage(need)
		r.mapped++
	}
	r.next++
	r.pages = append(r.pages, page{buf: buf, seq: r.next})
	r.used = 0
	r.bytes += int64(len(buf))
}

// page returns the page of a reference.
func (r *pageRing) page(ref pktRef) *page {
	return &r.pages[r.head+int(uint32(ref>>32)-r.pages[r.head].seq)]
}

// packet returns a packet's time, original length, bytes and the
// reference of its flow's next packet.
func (r *pageRing) packet(ref pktRef) (ts int64, origLen int, data []byte, next pktRef) {
	b := r.page(ref).buf[uint32(ref):]
	n := binary.LittleEndian.Uint32(b[12:])
	return int64(binary.LittleEndian.Uint64(b)), int(binary.LittleEndian.Uint32(b[8:])),
		b[pktHeader : pktHeader+n : pktHeader+n], pktRef(binary.LittleEndian.Uint64(b[16:]))
}

// prefetch starts loading a waiting packet's header (and with it the
// start of its bytes): a flow's packets lie far apart in the ring, each a
// cache miss, so the reader asks for the next one before it codes the
// current one.
func (r *pageRing) prefetch(ref pktRef) {
	flowtable.Prefetch(unsafe.Pointer(&r.page(ref).buf[uint32(ref)]))
}

// link makes next the packet after prev in their flow.
func (r *pageRing) link(prev, next pktRef) {
	b := r.page(prev).buf[uint32(prev):]
	binary.LittleEndian.PutUint64(b[16:], uint64(next))
}

// release marks a packet as gone and frees the oldest pages once all
// their packets are gone (never the newest, which is still filling).
func (r *pageRing) release(ref pktRef) {
	r.page(ref).live--
	for r.head < len(r.pages)-1 && r.pages[r.head].live == 0 {
		p := &r.pages[r.head]
		r.bytes -= int64(len(p.buf))
		if len(p.buf) == ringPage {
			r.free = append(r.free, p.buf)
		} else {
			freePage(p.buf)
		}
		*p = page{}
		r.head++
	}
}

// trim returns free pages to the kernel until the ring holds at most
// limit bytes or has none left.
func (r *pageRing) trim(limit int64) {
	for len(r.free) > 0 && r.held() > limit {
		freePage(r.free[len(r.free)-1])
		r.free[len(r.free)-1] = nil
		r.free = r.free[:len(r.free)-1]
	}
	r.minFree = min(r.minFree, len(r.free))
}

// shrink returns the free pages that were not needed since the previous
// shrink (called every tick), so that memory follows load; the others
// stay for reuse without a page fault.
func (r *pageRing) shrink() {
	for range r.minFree {
		freePage(r.free[len(r.free)-1])
		r.free[len(r.free)-1] = nil
		r.free = r.free[:len(r.free)-1]
	}
	r.minFree = len(r.free)
}

// directFlows is how many flows may have builders of their own (from
// their first waiting packet): while a worker has few flows their builders
// stay in cache and coding packets as they come is cheapest (the ring
// costs a copy, and a cache miss per packet when it is read back); past
// that, flows go through the ring. A flow keeps its builder until its
// block is emitted. Measured on the 10 M-packet input (few flows open at
// once) and the many-flows trace; a variant that also promoted ring flows
// past 16 KiB held more builders on the Go heap and took more memory.
const directFlows = 1024

// maxPooled is how many idle builders a worker keeps for reuse: as many
// as it has direct flows, since blocks closed by age leave their builders
// in bursts and the same flows take them back with their next packets
// (with 64, most blocks started from an empty buffer and grew it again).
// Their bytes count in the worker's buffered bytes and are bounded by
// pooledBytes.
const maxPooled = directFlows

// pooledBytes returns how many buffer bytes the pooled builders may hold:
// a sixteenth of the worker's share of blocks.max_buffered.
func (w *worker) pooledBytes() int64 { return w.maxBuffered / 16 }

// store appends a packet to its flow's own builder, or to the ring and
// links it to the flow's waiting packets (see above).
func (w *worker) store(st *flowState, data []byte, ci *capture.CaptureInfo) {
	if st.linkType != ci.LinkType && (st.head != 0 || st.b != nil) {
		w.emitFlow(st, false) // a block holds one link type
	}
	if st.b == nil && st.head == 0 {
		w.wait(st, ci.LinkType)
		if w.nOwn < directFlows {
			w.promote(st) // few flows: their builders stay in cache
		}
	}
	if b := st.b; b != nil { // the flow's own builder (appendOwn, inline)
		c := b.Cap()
		b.Append(ci.Timestamp, ci.Length, data)
		w.own += int64(b.Cap() - c)
		if b.Len() >= w.cfg.Blocks.MaxBytes {
			w.emitFlow(st, false)
		}
	} else {
		w.appendRing(st, data, ci)
	}
	w.stats.StoredPackets++
	w.stats.StoredBytes += uint64(len(data))
	// The pages in use and the builders against the soft cap, and with
	// the free pages and pooled builders (buffered) against the cap:
	// inUse computed once per packet.
	if u := w.ring.inUse() + w.own; u > w.soft || u+int64(len(w.ring.free))*ringPage+w.pooled > w.maxBuffered {
		w.bound()
	}
}

// softBuffered is where the worker starts closing blocks early: one ring
// page under its share of blocks.max_buffered (see bound).
func (w *worker) softBuffered() int64 { return max(w.maxBuffered-ringPage, w.maxBuffered/2) }

// setMaxBuffered sets the worker's share of blocks.max_buffered (and the
// soft cap that store tests each packet against).
func (w *worker) setMaxBuffered(n int64) {
	w.maxBuffered = n
	w.soft = w.softBuffered()
}

// bound brings the worker's buffered bytes back under its share of
// blocks.max_buffered: it closes the oldest waiting blocks early until the
// pages in use and the builders leave one page of headroom under the cap,
// so that the pages those blocks emptied stay mapped and the ring's next
// pages are reused ones. Returning emptied pages to the kernel at the cap
// and mapping fresh ones a moment later cost a page fault per 4 KiB of
// packets (288 k faults, about 8 % of the CPU on the many-flows trace).
// Only what is still over the cap after that (pooled builders, then free
// pages) is given back.
func (w *worker) bound() {
	limit, target := w.maxBuffered, w.softBuffered()
	for w.ring.inUse()+w.own > target && w.fifoHead < len(w.fifo) {
		w.closeOldest(true)
	}
	for len(w.pool) > 0 && w.buffered() > limit {
		w.dropPooled()
	}
	w.ring.trim(limit - w.own - w.pooled) // only if the cap still needs it
}

// buffered returns the bytes the worker holds for packets not yet in a block:
// the ring and the builders, in use or pooled.
func (w *worker) buffered() int64 { return w.ring.held() + w.own + w.pooled }

// appendRing adds a packet to the ring.
func (w *worker) appendRing(st *flowState, data []byte, ci *capture.CaptureInfo) {
	ref := w.ring.put(ci.Timestamp, ci.Length, data)
	if st.tail != 0 {
		w.ring.link(st.tail, ref)
	} else {
		st.head = ref
	}
	st.tail = ref
	st.waiting += uint32(len(data)) + 3 // about what delta coding adds
	if int(st.waiting) >= w.cfg.Blocks.MaxBytes {
		w.emitFlow(st, false)
	}
}

// promote gives a flow a builder of its own and moves its waiting
// packets, if any, from the ring into it.
func (w *worker) promote(st *flowState) {
	var b *block.Builder
	if n := len(w.pool); n > 0 {
		b = w.pool[n-1]
		w.pool = w.pool[:n-1]
		w.pooled -= int64(b.Cap())
	} else {
		b = new(block.Builder)
		w.newBuilders++
	}
	w.resetFor(b, st)
	for ref := st.head; ref != 0; {
		ts, origLen, data, next := w.ring.packet(ref)
		if next != 0 {
			w.ring.prefetch(next)
		}
		b.Append(ts, origLen, data)
		w.ring.release(ref)
		ref = next
	}
	st.head, st.tail, st.waiting = 0, 0, 0
	st.b = b
	w.own += int64(b.Cap())
	w.nOwn++
}

// resetFor starts the flow's next block in b.
func (w *worker) resetFor(b *block.Builder, st *flowState) {
	id, key, cid := w.table.FlowOf(st)
	b.Reset(block.Meta{Key: key, FlowID: id, CommunityID: cid, SensorID: w.cfg.SensorID,
		Interface: w.iface, LinkType: st.linkType, Seq: st.nextSeq})
	st.nextSeq++
}

// dropPooled frees the buffer of a pooled builder.
func (w *worker) dropPooled() {
	b := w.pool[len(w.pool)-1]
	w.pool = w.pool[:len(w.pool)-1]
	w.pooled -= int64(b.Cap())
	b.Release()
}

// wait puts a flow with no waiting packets in the age FIFO.
func (w *worker) wait(st *flowState, linkType uint16) {
	st.linkType = linkType
	w.gen++
	st.gen = w.gen
	if w.fifoHead > 0 && w.fifoHead == len(w.fifo) {
		w.fifo, w.fifoHead = w.fifo[:0], 0
	} else if w.fifoHead > 4096 && w.fifoHead*2 > len(w.fifo) {
		n := copy(w.fifo, w.fifo[w.fifoHead:])
		w.fifo, w.fifoHead = w.fifo[:n], 0
	}
	w.fifo = append(w.fifo, waitingFlow{st: st, gen: st.gen, since: w.table.Clock().Now()})
}

// closeOldest emits the flow that has waited longest (skipping stale
// FIFO entries); early when the ring is over blocks.max_buffered.
func (w *worker) closeOldest(early bool) {
	wf := w.fifo[w.fifoHead]
	w.fifo[w.fifoHead] = waitingFlow{}
	w.fifoHead++
	w.prefetchWaiting()
	if (wf.st.head != 0 || wf.st.b != nil) && wf.st.gen == wf.gen {
		w.emitFlow(wf.st, early)
	}
}

// prefetchWaiting starts loading what the next closeOldest calls read:
// the flow entry two places ahead in the FIFO and the first waiting
// packet of the one after this. Closing blocks early at the cap walks
// the FIFO flow after flow, each entry and packet a cache miss.
func (w *worker) prefetchWaiting() {
	if h := w.fifoHead + 1; h < len(w.fifo) {
		flowtable.Prefetch(unsafe.Pointer(w.fifo[h].st))
	}
	if h := w.fifoHead; h < len(w.fifo) {
		if st := w.fifo[h].st; st.head != 0 {
			w.ring.prefetch(st.head)
		}
	}
}

// emitFlow hands a flow's waiting packets to the sink: its own builder's
// block, or the packets in the ring as one block (more when they exceed
// blocks.max_bytes once delta coded), released from the ring.
func (w *worker) emitFlow(st *flowState, early bool) {
	st.gen = 0
	if b := st.b; b != nil {
		st.b = nil
		w.nOwn--
		w.emitBlock(b, early)
		w.own -= int64(b.Cap())
		if b.Len() > 2*w.cfg.Blocks.MaxBytes || len(w.pool) >= maxPooled || w.pooled+int64(b.Cap()) > w.pooledBytes() {
			b.Release()
		} else {
			w.pool = append(w.pool, b)
			w.pooled += int64(b.Cap())
		}
		return
	}
	b := &w.bld
	w.resetFor(b, st)
	for ref := st.head; ref != 0; {
		ts, origLen, data, next := w.ring.packet(ref)
		if next != 0 {
			w.ring.prefetch(next)
		}
		b.Append(ts, origLen, data)
		w.ring.release(ref)
		ref = next
		if ref != 0 && b.Len() >= w.cfg.Blocks.MaxBytes {
			w.emitBlock(b, early)
			w.resetFor(b, st)
		}
	}
	w.emitBlock(b, early)
	st.head, st.tail, st.waiting = 0, 0, 0
	if b.Len() > 2*w.cfg.Blocks.MaxBytes {
		b.Release()
	}
}

func (w *worker) emitBlock(b *block.Builder, early bool) {
	if early {
		w.stats.BlocksClosedEarly++
	}
	w.emit(b)
}
