package ebpf

import (
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// DirCounters are the kernel's counters of one flow direction.
type DirCounters struct {
	Packets, Bytes uint64
	// First and Last are wall-clock times (converted from the kernel's
	// coarse monotonic clock, one tick of resolution); zero when the
	// direction saw no packet.
	First, Last time.Time
	TCPFlags    uint8
	// StoredPackets and StoredBytes are what the cut-off passed under
	// the budget.
	StoredPackets, StoredBytes uint64
}

// FlowCounters are the kernel's counters of one flow; Dir[0] runs from the
// key's A side to its B side.
type FlowCounters struct {
	Dir [2]DirCounters
}

// Last returns the flow's last packet time in either direction.
func (c *FlowCounters) Last() time.Time {
	if c.Dir[1].Last.After(c.Dir[0].Last) {
		return c.Dir[1].Last
	}
	return c.Dir[0].Last
}

// Kernel is the kernel side of the data path as the flow logic sees it:
// the per-flow map, read and deleted by key or in batches. The real one
// wraps the eBPF maps (kernel_linux.go); tests use a fake. Implementations
// must be safe for concurrent use.
type Kernel interface {
	// Lookup returns the counters of flow k.
	Lookup(k *flow.Key) (FlowCounters, bool, error)
	// Delete removes the entries of keys (missing ones are not errors)
	// and returns how many it removed.
	Delete(keys []flow.Key) (int, error)
	// Walk calls fn for every entry, reading the map in batches.
	Walk(fn func(k *flow.Key, c *FlowCounters)) error
}

// KernelCounters are the eBPF programs' own counters, summed over CPUs.
type KernelCounters struct {
	Accounted        uint64 // packets the program accounted to a flow
	Untracked        uint64 // packets it did not track (not TCP/UDP/SCTP over IP, fragments)
	NewFlows         uint64 // entries created
	MapFull          uint64 // entries that could not be created (map full), packets passed whole
	EventDrops       uint64 // ring buffer events lost (ring full)
	Passed           uint64 // packets the cut-off passed under the budget
	PassedControl    uint64 // TCP SYN/FIN/RST passed past the budget
	PassedPinned     uint64 // packets of pinned flows passed past the budget
	PassedKeepalive  uint64 // keepalive packets passed past the budget
	CutPackets       uint64 // packets the cut-off dropped before the copy
	CutBytes         uint64 // their wire bytes
	MapEntries       uint64 // entries in the flow map at the last drain
	DrainedIdle      uint64 // idle entries deleted by the drain loop
	DeletedOnRecord  uint64 // entries deleted when their flow's final record went out
	RecordsMerged    uint64 // records that got the kernel's counters
	RecordsUnmatched uint64 // records of tracked protocols without a kernel entry
}
