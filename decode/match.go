package decode

import "github.com/tapir-sensor/tapir/flow"

// TunnelMatch tells whether frames went through a given tunnel: whether
// one of the connections a frame is made of (its tunnel levels' outer
// connections, or its own tuple when it was not taken apart) is the
// tunnel's. It is how the packets of a tunnel's own flow are picked out
// of the blocks of the inner flows it carries. A TunnelMatch is not safe
// for concurrent use (it reuses one Packet).
type TunnelMatch struct {
	key flow.Key
	opt Options
	p   Packet
}

// NewTunnelMatch returns a matcher for the tunnel whose own connection is
// t (VLANs and mirror key aside). Frames are decoded with the default
// ports and the deepest nesting, so a mirror level or an outer tunnel in
// front of t still finds it; a tunnel on a port the defaults do not take
// apart is found as the frame's own tuple.
func NewTunnelMatch(t flow.Tuple) *TunnelMatch {
	t.VLAN, t.InnerVLAN, t.Mirror = 0, 0, 0
	m := &TunnelMatch{opt: Options{TunnelDepth: MaxTunnels}}
	m.key, _ = t.Key()
	return m
}

// Match reports whether frame, captured with link type link, went
// through the tunnel.
func (m *TunnelMatch) Match(link LinkType, frame []byte) bool {
	m.opt.Decode(link, frame, &m.p)
	if m.p.HasTuple && m.is(m.p.Tuple) {
		return true
	}
	for i := range m.p.Tunnels[:m.p.NTunnels] {
		if m.is(m.p.Tunnels[i].Tuple()) {
			return true
		}
	}
	return false
}

// is reports whether t, VLANs aside, is the tunnel's connection.
func (m *TunnelMatch) is(t flow.Tuple) bool {
	t.VLAN, t.InnerVLAN, t.Mirror = 0, 0, 0
	var k flow.Key
	t.KeyInto(&k)
	return k == m.key
}
