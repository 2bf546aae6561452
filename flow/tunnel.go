package flow

import "slices"

// TunnelType is the kind of one tunnel level a packet was found inside.
// The zero value means no tunnel.
type TunnelType uint8

// Tunnel types the sensor's decoder takes apart.
const (
	TunnelNone    TunnelType = iota
	TunnelIPIP               // IPv4 or IPv6 directly in IPv4 or IPv6 (IP protocol 4 or 41: 4in4, 6in4, 4in6, 6in6)
	TunnelGRE                // GRE (IP protocol 47) carrying IP, MPLS or Ethernet (transparent Ethernet bridging)
	TunnelERSPAN1            // ERSPAN type I: GRE 0x88be without a sequence number, Ethernet follows
	TunnelERSPAN2            // ERSPAN type II: GRE 0x88be with an 8-byte ERSPAN header
	TunnelERSPAN3            // ERSPAN type III: GRE 0x22eb with a 12-byte (+8 optional) ERSPAN header
	TunnelVXLAN              // VXLAN over UDP (4789 by default)
	TunnelGeneve             // Geneve over UDP (6081 by default)
	TunnelGTPU               // GTP-U G-PDU over UDP (2152)
	TunnelTeredo             // Teredo: IPv6 over UDP (3544)
	NumTunnelTypes
)

var tunnelNames = [NumTunnelTypes]string{
	"none", "ipip", "gre", "erspan1", "erspan2", "erspan3", "vxlan", "geneve", "gtpu", "teredo",
}

// String returns the type's lower-case name ("vxlan", "erspan2"...),
// suitable as a metric label or an ECS keyword.
func (t TunnelType) String() string {
	if t < NumTunnelTypes {
		return tunnelNames[t]
	}
	return "invalid"
}

// Tunnel is one level of a packet's tunnel chain: the encapsulating
// header's type, the tunnel's own connection (outer IP addresses, Family
// saying which form, IP protocol, and the UDP ports of the UDP tunnels)
// and the tunnel's identifier when it has one: the VXLAN or Geneve VNI,
// the GRE key, the ERSPAN session ID or the GTP-U TEID (HasID false
// otherwise). Zeek calls the tunnels a connection was found in its
// tunnel parents.
type Tunnel struct {
	Src, Dst         Addr
	ID               uint32
	SrcPort, DstPort uint16
	Type             TunnelType
	Family           uint8
	Proto            uint8
	HasID            bool
	// Mirror marks the mirror encapsulation of a mirror interface (AWS
	// or Azure VXLAN, remote-SPAN ERSPAN): the level is how the traffic
	// reached the sensor, not a tunnel of the mirrored network, so it
	// gets no flow record of its own.
	Mirror bool
}

// Tuple returns the tunnel's own connection as a tuple (no VLANs).
func (t *Tunnel) Tuple() Tuple {
	return Tuple{Src: t.Src, Dst: t.Dst, SrcPort: t.SrcPort, DstPort: t.DstPort, Proto: t.Proto, Family: t.Family}
}

// ParseTunnelType is the inverse of TunnelType.String; "none" and
// unknown names give false.
func ParseTunnelType(s string) (TunnelType, bool) {
	for i := TunnelIPIP; i < NumTunnelTypes; i++ {
		if tunnelNames[i] == s {
			return i, true
		}
	}
	return TunnelNone, false
}

// IDName returns the name of the tunnel type's identifier as the ECS
// JSON writes it ("vni", "key", "session_id", "teid"), or "" for the
// types that have none.
func (t TunnelType) IDName() string {
	switch t {
	case TunnelVXLAN, TunnelGeneve:
		return "vni"
	case TunnelGRE:
		return "key"
	case TunnelERSPAN1, TunnelERSPAN2, TunnelERSPAN3:
		return "session_id"
	case TunnelGTPU:
		return "teid"
	}
	return ""
}

// TunnelChain is the tunnel chain of a flow: its levels, outermost
// first.
type TunnelChain struct {
	Levels []Tunnel
}

// NewTunnelChain returns a chain holding a copy of levels, or nil when
// levels is empty.
func NewTunnelChain(levels []Tunnel) *TunnelChain {
	if len(levels) == 0 {
		return nil
	}
	return &TunnelChain{Levels: append([]Tunnel(nil), levels...)}
}

// Len returns the number of levels (0 for a nil chain).
func (c *TunnelChain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.Levels)
}

// Equal reports whether c holds exactly levels (a nil chain equals no
// levels).
func (c *TunnelChain) Equal(levels []Tunnel) bool {
	if c == nil {
		return len(levels) == 0
	}
	return slices.Equal(c.Levels, levels)
}

// Reverse returns the level seen from its other end: addresses and
// ports swapped.
func (t Tunnel) Reverse() Tunnel {
	t.Src, t.Dst = t.Dst, t.Src
	t.SrcPort, t.DstPort = t.DstPort, t.SrcPort
	return t
}

// SameTunnel reports whether t and o are the same tunnel, in either
// direction: same type, protocol, identifier and pair of addresses.
// Ports are not compared: a VXLAN or Geneve source port is chosen per
// inner flow and direction (entropy for ECMP), and the replies of a flow
// come back with other ones.
func (t *Tunnel) SameTunnel(o *Tunnel) bool {
	if t.Type != o.Type || t.Family != o.Family || t.Proto != o.Proto || t.HasID != o.HasID || t.ID != o.ID {
		return false
	}
	return t.Src == o.Src && t.Dst == o.Dst || t.Src == o.Dst && t.Dst == o.Src
}

// Same reports whether levels are the chain's tunnels, level by level,
// in either direction (see Tunnel.SameTunnel): a flow's replies come
// back through the same chain reversed. A nil chain is the same as no
// levels.
func (c *TunnelChain) Same(levels []Tunnel) bool {
	if c.Len() != len(levels) {
		return false
	}
	for i := range levels {
		if !c.Levels[i].SameTunnel(&levels[i]) {
			return false
		}
	}
	return true
}
