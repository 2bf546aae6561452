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
