package flowtable

import (
	"unsafe"

	"github.com/tapir-sensor/tapir/flow"
)

// PrefetchSlot starts loading the index slot of a packet's flow, two
// packets ahead of Packet; PrefetchEntry, one packet ahead, reads that
// slot and starts loading the flow's entry. A caller that sees packets
// ahead (a ring block) overlaps their cache misses with the current
// packet's work. Both only hint; neither changes the table.
func (t *Table[T]) PrefetchSlot(tup *flow.Tuple) {
	var k flow.Key
	tup.KeyInto(&k)
	prefetch(unsafe.Pointer(&t.index[uint32(t.hash(&k))&t.mask]))
}

// PrefetchEntry: see PrefetchSlot.
func (t *Table[T]) PrefetchEntry(tup *flow.Tuple) {
	var k flow.Key
	tup.KeyInto(&k)
	h := t.hash(&k)
	if s := t.index[uint32(h)&t.mask]; s != 0 && s&^slotIdxMask == uint32(h>>56)<<24 {
		e := t.at(s&slotIdxMask - 1)
		prefetch(unsafe.Pointer(&e.key))
		prefetch(unsafe.Pointer(e))
	}
}

// Prefetch asks the CPU to start loading the cache line at p without
// waiting for it: a hint for a caller that knows which cold line it reads
// next (the engine, walking a flow's packets back from its ring). Nothing
// is read or changed.
func Prefetch(p unsafe.Pointer) { prefetch(p) }

// PrefetchLinks, a packet ahead of Packet and after PrefetchEntry, finds
// the packet's flow (its slot and entry now loaded) and starts loading
// the entries of its neighbours in the least-recently-active list, which
// Packet writes when it moves the flow to the front: stores to cold lines
// would otherwise queue in the store buffer. It returns the flow's state
// (nil when the flow is not open), which the caller may read to prefetch
// its own per-flow lines; it must not change it. The table is unchanged.
func (t *Table[T]) PrefetchLinks(tup *flow.Tuple) *T {
	var k flow.Key
	tup.KeyInto(&k)
	idx, _ := t.find(&k, t.hash(&k))
	if idx == nilIdx {
		return nil
	}
	e := t.at(idx)
	if idx != t.head {
		if e.prev != nilIdx {
			prefetch(unsafe.Pointer(&t.at(e.prev).next))
		}
		if e.next != nilIdx {
			prefetch(unsafe.Pointer(&t.at(e.next).prev))
		}
	}
	return &e.user
}
