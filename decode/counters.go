package decode

import "github.com/tapir-sensor/tapir/flow"

// EtherBucket indexes Counters.EtherTypes.
type EtherBucket uint8

// Ethertype buckets. EtherNone counts frames that carried no ethertype
// (unsupported link types, frames cut before the ethertype); EtherLLC
// counts 802.3 frames (length field instead of an ethertype); EtherOther
// counts every ethertype without a bucket of its own.
const (
	EtherNone EtherBucket = iota
	EtherLLC
	EtherIPv4
	EtherIPv6
	EtherARP
	EtherRARP
	EtherVLAN // only when the frame ends inside the tag stack
	EtherMPLS // only when the label stack carries no IP
	EtherPPPoEDiscovery
	EtherPPPoESession // only when PPPoE carries no IP
	EtherLLDP
	EtherLoopback
	EtherEAPOL
	EtherSlow
	EtherMACControl
	EtherPTP
	EtherMACsec
	EtherFCoE
	EtherIPX
	EtherWakeOnLAN
	EtherOther
	NumEtherBuckets
)

var etherBucketNames = [NumEtherBuckets]string{
	"none", "llc", "ipv4", "ipv6", "arp", "rarp", "vlan", "mpls", "pppoe-discovery",
	"pppoe-session", "lldp", "loopback", "eapol", "slow", "mac-control", "ptp",
	"macsec", "fcoe", "ipx", "wake-on-lan", "other",
}

// String returns the bucket's name, suitable as a metric label.
func (b EtherBucket) String() string {
	if b < NumEtherBuckets {
		return etherBucketNames[b]
	}
	return "invalid"
}

// BucketOf returns the bucket counting ethertype et.
func BucketOf(et uint16) EtherBucket {
	switch et {
	case 0:
		return EtherNone
	case EtherTypeIPv4:
		return EtherIPv4
	case EtherTypeIPv6:
		return EtherIPv6
	case EtherTypeARP:
		return EtherARP
	case EtherTypeRARP:
		return EtherRARP
	case EtherTypeVLAN, EtherTypeQinQ, EtherTypeQinQOld:
		return EtherVLAN
	case EtherTypeMPLS, EtherTypeMPLSMcast:
		return EtherMPLS
	case EtherTypePPPoEDisc:
		return EtherPPPoEDiscovery
	case EtherTypePPPoE:
		return EtherPPPoESession
	case EtherTypeLLDP:
		return EtherLLDP
	case EtherTypeLoopback:
		return EtherLoopback
	case EtherTypeEAPOL:
		return EtherEAPOL
	case EtherTypeSlow:
		return EtherSlow
	case EtherTypeMACControl:
		return EtherMACControl
	case EtherTypePTP:
		return EtherPTP
	case EtherTypeMACsec:
		return EtherMACsec
	case EtherTypeFCoE:
		return EtherFCoE
	case EtherTypeIPX:
		return EtherIPX
	case EtherTypeWakeOnLAN:
		return EtherWakeOnLAN
	}
	if et <= EtherTypeMaxLLCLength {
		return EtherLLC
	}
	return EtherOther
}

// MaxUnknownEtherTypes is how many distinct unbucketed ethertypes a
// Counters records individually; later ones are only counted in
// EtherOther.
const MaxUnknownEtherTypes = 8

// UnknownEtherType is one individually recorded unbucketed ethertype.
type UnknownEtherType struct {
	EtherType uint16
	Packets   uint64
}

// Counters tallies what the decoder saw. It is a plain value with no
// pointers: each capture worker owns one and calls Observe on its hot path
// (no allocation, no locking); an exporter copies workers' counters
// under its own synchronisation and folds them with Merge. Not safe for
// concurrent use.
type Counters struct {
	Packets uint64 // frames observed
	Bytes   uint64 // sum of wire lengths

	// IPProto counts packets with an IP header per transport protocol
	// (after IPv6 extension headers).
	IPProto [256]uint64
	// EtherTypes counts frames per innermost ethertype bucket.
	EtherTypes [NumEtherBuckets]uint64
	// Unknown records the first MaxUnknownEtherTypes distinct ethertypes
	// that fell into EtherOther, with their counts; NUnknown are in use.
	Unknown  [MaxUnknownEtherTypes]UnknownEtherType
	NUnknown uint8

	Truncated   uint64 // frames with StatusTruncated
	Malformed   uint64 // frames with StatusMalformed
	Unsupported uint64 // frames with StatusUnsupported
	Fragments   uint64 // IP fragments (first and later)
	LaterFrags  uint64 // IP fragments with a non-zero offset
	NoPorts     uint64 // TCP/UDP/SCTP/ICMP packets whose ports were not reached
	VLANTagged  uint64 // frames with at least one VLAN tag
	MPLS        uint64 // frames with at least one MPLS label

	// Tunnels counts tunnel levels stripped, per type (a VXLAN packet
	// inside GRE counts once in each).
	Tunnels [flow.NumTunnelTypes]uint64
	// TunnelDepth counts tunnelled packets by the number of levels
	// stripped (index 0 unused).
	TunnelDepth [MaxTunnels + 1]uint64
	// TunnelDepthLimit counts packets with a tunnel below the configured
	// depth (keyed on the deepest level allowed).
	TunnelDepthLimit uint64
	// TunnelFragments counts tunnel packets whose outer IP packet is a
	// fragment (keyed on the outer header: no reassembly).
	TunnelFragments uint64
	// TunnelOpaque counts tunnels whose payload held no complete IP
	// header (non-IP payload or a cut frame; keyed on the tunnel).
	TunnelOpaque uint64
	// TunnelFiltered counts packets Options.Keep rejected (the sensor's
	// tunnel filter): the engine counts them, as it drops them.
	TunnelFiltered uint64
}

// Observe counts one decoded packet whose original length on the wire was
// wireLen.
func (c *Counters) Observe(p *Packet, wireLen int) {
	c.Packets++
	c.Bytes += uint64(wireLen)
	b := BucketOf(p.EtherType)
	c.EtherTypes[b]++
	if b == EtherOther {
		c.recordUnknown(p.EtherType, 1)
	}
	if p.HasTuple {
		c.IPProto[p.Proto]++
		if !p.HasPorts && p.FragOffset == 0 {
			switch p.Proto {
			case 1, 6, 17, 58, 132, 136:
				c.NoPorts++
			}
		}
	}
	if p.Status != 0 {
		if p.Status&StatusTruncated != 0 {
			c.Truncated++
		}
		if p.Status&StatusMalformed != 0 {
			c.Malformed++
		}
		if p.Status&StatusUnsupported != 0 {
			c.Unsupported++
		}
	}
	if p.IsFragment {
		c.Fragments++
		if p.FragOffset != 0 {
			c.LaterFrags++
		}
	}
	if p.VLANTags != 0 {
		c.VLANTagged++
	}
	if p.MPLSLabels != 0 {
		c.MPLS++
	}
	if p.NTunnels != 0 || p.OpaqueTunnel != 0 || p.TunnelDepthHit || p.TunnelFragment {
		c.observeTunnels(p)
	}
}

// observeTunnels counts p's tunnel levels and the tunnels it could not
// strip.
func (c *Counters) observeTunnels(p *Packet) {
	n := min(int(p.NTunnels), MaxTunnels)
	for i := range p.Tunnels[:n] {
		if t := p.Tunnels[i].Type; t < flow.NumTunnelTypes {
			c.Tunnels[t]++
		}
	}
	if n > 0 {
		c.TunnelDepth[n]++
	}
	if p.TunnelDepthHit {
		c.TunnelDepthLimit++
	}
	if p.TunnelFragment {
		c.TunnelFragments++
	}
	if p.OpaqueTunnel != 0 {
		c.TunnelOpaque++
	}
}

func (c *Counters) recordUnknown(et uint16, n uint64) {
	for i := 0; i < int(c.NUnknown); i++ {
		if c.Unknown[i].EtherType == et {
			c.Unknown[i].Packets += n
			return
		}
	}
	if int(c.NUnknown) < MaxUnknownEtherTypes {
		c.Unknown[c.NUnknown] = UnknownEtherType{EtherType: et, Packets: n}
		c.NUnknown++
	}
}

// Merge adds o's counts into c. Unknown ethertypes from o are added to
// c's record while it has room; EtherTypes[EtherOther] stays exact either
// way.
func (c *Counters) Merge(o *Counters) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
	for i := range c.IPProto {
		c.IPProto[i] += o.IPProto[i]
	}
	for i := range c.EtherTypes {
		c.EtherTypes[i] += o.EtherTypes[i]
	}
	for i := 0; i < int(o.NUnknown) && i < MaxUnknownEtherTypes; i++ {
		c.recordUnknown(o.Unknown[i].EtherType, o.Unknown[i].Packets)
	}
	c.Truncated += o.Truncated
	c.Malformed += o.Malformed
	c.Unsupported += o.Unsupported
	c.Fragments += o.Fragments
	c.LaterFrags += o.LaterFrags
	c.NoPorts += o.NoPorts
	c.VLANTagged += o.VLANTagged
	c.MPLS += o.MPLS
	for i := range c.Tunnels {
		c.Tunnels[i] += o.Tunnels[i]
	}
	for i := range c.TunnelDepth {
		c.TunnelDepth[i] += o.TunnelDepth[i]
	}
	c.TunnelDepthLimit += o.TunnelDepthLimit
	c.TunnelFragments += o.TunnelFragments
	c.TunnelOpaque += o.TunnelOpaque
	c.TunnelFiltered += o.TunnelFiltered
}
