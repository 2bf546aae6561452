package flow

import "time"

// EndReason says why a flow record was emitted.
type EndReason uint8

// End reasons. ReasonActive marks a periodic update of a flow that is
// still open; every other reason marks the flow's final record.
const (
	ReasonActive        EndReason = iota // periodic update, flow still open
	ReasonFIN                            // TCP FIN seen in both directions (or FIN then idle)
	ReasonRST                            // TCP RST
	ReasonIdleTimeout                    // no packet for the idle timeout
	ReasonActiveTimeout                  // flow lived longer than the active timeout
	ReasonEvicted                        // flow table full; evicted to make room
	ReasonEndOfCapture                   // the capture ended (file end or shutdown)
)

var reasonNames = [...]string{"active", "fin", "rst", "idle-timeout", "active-timeout", "evicted", "end-of-capture"}

// String returns the reason as it appears in event.reason.
func (r EndReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// ParseEndReason is the inverse of EndReason.String.
func ParseEndReason(s string) (EndReason, bool) {
	for i, n := range reasonNames {
		if n == s {
			return EndReason(i), true
		}
	}
	return 0, false
}

// Final reports whether the reason ends the flow.
func (r EndReason) Final() bool { return r != ReasonActive }

// TCP flag bits as they appear in the TCP header's flags byte.
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// DirStats counts one direction of a flow. Bytes are frame lengths on the
// wire (the original length, as tshark's frame.len counts), including link
// headers. Stored* count what went into packet blocks after the capture
// budget and snap length.
type DirStats struct {
	Packets       uint64
	Bytes         uint64
	StoredPackets uint64
	StoredBytes   uint64
	First, Last   time.Time // zero when the direction saw no packet
	TCPFlags      uint8     // OR of TCP flags seen
}

// Record is one report of a flow: its final record, or a periodic update of
// a long flow (Reason == ReasonActive). Updates and the final record of a
// flow share its ID; Segment counts the reports of the flow from 0, so the
// final record tells how many came before it. Counters in every report are
// cumulative since the flow's start.
//
// Source is the initiator: the sender of the first SYN when there was one,
// else the sender of the first packet seen.
type Record struct {
	ID          ID
	SensorID    string
	Interface   string
	CommunityID string
	Tuple       Tuple // oriented initiator -> responder
	Source      DirStats
	Destination DirStats
	Start, End  time.Time
	Reason      EndReason
	Segment     uint32
	// Truncated counts packets of this flow whose capture was cut by the
	// snap length; BudgetCut counts packets not stored because the flow's
	// capture budget was spent.
	Truncated uint64
	BudgetCut uint64
	// App holds application metadata extracted at the sensor; nil when
	// none. Enrichment holds the collector's context; nil when none.
	App *AppMeta
	// Timeline holds packets and bytes per interval of a long flow
	// (sensor); nil when none.
	Timeline   *Timeline
	Enrichment *Enrichment
	// Exported is set on records that a flow exporter (router, switch,
	// firewall) sent over NetFlow, IPFIX or sFlow; nil for sensor records.
	Exported *Exported
	// Tunnels is the tunnel chain the flow was found in, outermost
	// first (Zeek's tunnel parents): the chain of the flow's first
	// packet, each level oriented as Tuple (its source on the
	// initiator's side). The replies coming back through the same
	// tunnels reversed, or with other UDP source ports, are the same
	// chain (TunnelChain.Same). A later packet of the flow that arrives
	// through other tunnels (or none) is counted by the sensor
	// (tapir_sensor_tunnel_chain_changed_total) and leaves the record's
	// chain as it is. Nil for a flow seen outside any tunnel. (A
	// pointer, as App's, so that records stay comparable values.)
	Tunnels *TunnelChain
}

// IsTunnelFlow reports whether r is the record of a tunnel's own
// connection (the outer 5-tuple of a VXLAN, GRE, IP-in-IP... tunnel the
// sensor took apart) rather than of a connection found inside it: its
// chain is the one tunnel level whose connection is the record's own
// tuple (VLANs aside). Such a record counts the tunnel's packets and
// bytes as on the wire; its packets are stored once, with the inner
// flows, so it has no blocks of its own (except packets the decoder
// could not take apart, which stay on the tunnel's tuple).
func (r *Record) IsTunnelFlow() bool {
	if r.Tunnels.Len() != 1 {
		return false
	}
	own := r.Tunnels.Levels[0].Tuple()
	own.VLAN, own.InnerVLAN, own.Mirror = r.Tuple.VLAN, r.Tuple.InnerVLAN, r.Tuple.Mirror
	return own == r.Tuple
}

// Key returns the record's canonical flow key.
func (r *Record) Key() Key {
	k, _ := r.Tuple.Key()
	return k
}
