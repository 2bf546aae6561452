package ebpf

import (
	"sync/atomic"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// MergeSink wraps the sensor's sink: before a flow record goes on, it
// takes the kernel's exact counters of the flow (packets, bytes, TCP
// flags, last seen per direction), so that a flow the cut-off trimmed
// still reports everything it carried, while the stored counters stay
// those of the blocks actually written. On a final record it deletes the
// kernel entry, so a reused 5-tuple starts afresh. It is safe for
// concurrent use if the wrapped sink is.
type MergeSink struct {
	next   output.Sink
	kernel Kernel

	merged, unmatched, deleted, errors atomic.Uint64
}

// NewMergeSink returns a MergeSink forwarding to next.
func NewMergeSink(next output.Sink, k Kernel) *MergeSink {
	return &MergeSink{next: next, kernel: k}
}

// AddBlock forwards the block.
func (m *MergeSink) AddBlock(encoded []byte) error { return m.next.AddBlock(encoded) }

// AddRecord merges the kernel's counters into rec and forwards it.
func (m *MergeSink) AddRecord(rec *flow.Record) error {
	if Tracked(&rec.Tuple) {
		k, fwd := rec.Tuple.Key()
		kc, ok, err := m.kernel.Lookup(&k)
		switch {
		case err != nil:
			m.errors.Add(1)
		case !ok:
			m.unmatched.Add(1)
		default:
			Merge(rec, &kc, fwd)
			m.merged.Add(1)
		}
		if rec.Reason.Final() && ok {
			if n, err := m.kernel.Delete([]flow.Key{k}); err == nil {
				m.deleted.Add(uint64(n))
			}
		}
	}
	return m.next.AddRecord(rec)
}

// Stats returns records merged, records without a kernel entry, entries
// deleted on final records, and lookup errors.
func (m *MergeSink) Stats() (merged, unmatched, deleted, errs uint64) {
	return m.merged.Load(), m.unmatched.Load(), m.deleted.Load(), m.errors.Load()
}

// Tracked reports whether the kernel programs account flows of this
// tuple: TCP, UDP and SCTP over IPv4 and IPv6 (fragments and other
// protocols are captured whole and counted in userspace only).
func Tracked(t *flow.Tuple) bool {
	return (t.Family == flow.FamilyIPv4 || t.Family == flow.FamilyIPv6) && flow.HasPorts(t.Proto)
}

// Merge folds the kernel's counters kc of a flow into rec. fwd says
// whether rec.Tuple (initiator first) runs in the key's forward
// direction. Both sides count a subset of the flow's packets (the kernel
// all but IP fragments, userspace all it was handed), so per direction
// the larger count wins; TCP flags are ORed; the stored counters are
// userspace's. Packets the kernel saw that userspace never got were cut
// by the budget and are added to BudgetCut, which then equals what a
// userspace-only budget reports.
func Merge(rec *flow.Record, kc *FlowCounters, fwd bool) {
	src, dst := &kc.Dir[0], &kc.Dir[1]
	if !fwd {
		src, dst = dst, src
	}
	for _, p := range [2]struct {
		d *flow.DirStats
		k *DirCounters
	}{{&rec.Source, src}, {&rec.Destination, dst}} {
		d, k := p.d, p.k
		if k.Packets > d.Packets {
			rec.BudgetCut += k.Packets - d.Packets
			d.Packets = k.Packets
			if k.Bytes > d.Bytes {
				d.Bytes = k.Bytes
			}
		}
		d.TCPFlags |= k.TCPFlags
		if d.First.IsZero() {
			d.First = k.First
		}
		if k.Last.After(d.Last) {
			d.Last = k.Last
		}
		if d.Last.After(rec.End) {
			rec.End = d.Last
		}
	}
}
