package flowtable

import "github.com/tapir-sensor/tapir/flow"

// Stats are a table's counters, cumulative since New except the gauges
// Active, Fragments and FragmentsHeld. The sensor exports them (summed
// over workers) as metrics.
type Stats struct {
	Packets uint64 // packets passed to Packet
	Active  uint64 // open flows (gauge)
	Created uint64 // flow instances created
	// Ended counts final records by reason (indexed by flow.EndReason;
	// Ended[flow.ReasonEvicted] is the number of evictions).
	Ended   [flow.ReasonEndOfCapture + 1]uint64
	Updates uint64 // ReasonActive update records emitted

	BudgetCutPackets uint64 // packets not stored: direction budget spent
	BudgetCutBytes   uint64 // their bytes (captured, after snap length)
	TruncatedPackets uint64 // packets stored shorter than their wire length

	Fragments           uint64 // datagrams whose ports the tracker holds (gauge)
	FragmentsHeld       uint64 // non-first fragments waiting for their first fragment (gauge)
	FragmentsResolved   uint64 // non-first fragments counted in their datagram's flow
	FragmentsReordered  uint64 // of those, fragments that arrived before their first fragment
	FragmentsOrphaned   uint64 // non-first fragments counted in a port-less flow
	FragmentsUnstored   uint64 // non-first fragments held, hence not stored
	FragmentTrackerFull uint64 // datagrams forgotten early because the tracker was full
	FragmentHeldFull    uint64 // fragments orphaned at once because the held list was full

	ClockSteps uint64 // times packet time stepped back by StepThreshold or more (see Clock)

	TunnelledFlows     uint64 // flows whose first packet came through a tunnel (their records carry its chain)
	TunnelChainChanged uint64 // packets whose tunnel chain differs from their flow's first packet's (the record keeps the first)
	TunnelFlows        uint64 // flows of a tunnel's own connection (its outer 5-tuple), beside the inner flows
}

// Evicted returns the number of flows evicted because the table was full.
func (s *Stats) Evicted() uint64 { return s.Ended[flow.ReasonEvicted] }

// Add adds o's counters (and gauges) to s, to sum the tables of workers.
func (s *Stats) Add(o *Stats) {
	s.Packets += o.Packets
	s.Active += o.Active
	s.Created += o.Created
	for i := range s.Ended {
		s.Ended[i] += o.Ended[i]
	}
	s.Updates += o.Updates
	s.BudgetCutPackets += o.BudgetCutPackets
	s.BudgetCutBytes += o.BudgetCutBytes
	s.TruncatedPackets += o.TruncatedPackets
	s.Fragments += o.Fragments
	s.FragmentsHeld += o.FragmentsHeld
	s.FragmentsResolved += o.FragmentsResolved
	s.FragmentsReordered += o.FragmentsReordered
	s.FragmentsOrphaned += o.FragmentsOrphaned
	s.FragmentsUnstored += o.FragmentsUnstored
	s.FragmentTrackerFull += o.FragmentTrackerFull
	s.FragmentHeldFull += o.FragmentHeldFull
	s.ClockSteps += o.ClockSteps
	s.TunnelledFlows += o.TunnelledFlows
	s.TunnelChainChanged += o.TunnelChainChanged
	s.TunnelFlows += o.TunnelFlows
}
