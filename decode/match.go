package decode

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tapir-sensor/tapir/flow"
)

// TunnelMatch tells whether frames went through a given tunnel: whether
// one of the connections a frame is made of (its tunnel levels' outer
// connections, or its own tuple when it was not taken apart) is the
// tunnel's. It is how the packets of a tunnel's own flow are picked out
// of the blocks of the inner flows it carries. A TunnelMatch is not safe
// for concurrent use (it reuses one Packet).
//
// Frames are decoded with the default ports and the deepest nesting, so
// a mirror level or an outer tunnel in front of the tunnel still finds
// it; a tunnel on a port the defaults do not take apart is found as the
// frame's own tuple.
type TunnelMatch struct {
	opt Options
	p   Packet
	// the tunnel: its key (VLANs aside), or its Community ID (raw) and seed
	key   flow.Key
	cid   [sha1.Size]byte
	seed  uint16
	byCID bool
}

// NewTunnelMatch returns a matcher for the tunnel whose own connection is
// t (VLANs and mirror key aside).
func NewTunnelMatch(t flow.Tuple) *TunnelMatch {
	t.VLAN, t.InnerVLAN, t.Mirror = 0, 0, 0
	m := &TunnelMatch{opt: Options{TunnelDepth: MaxTunnels}}
	m.key, _ = t.Key()
	return m
}

// NewTunnelMatchCommunityID returns a matcher for the tunnel whose own
// connection has Community ID cid ("1:..." computed with seed).
func NewTunnelMatchCommunityID(cid string, seed uint16) (*TunnelMatch, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(cid, "1:"))
	if err != nil || len(raw) != sha1.Size || !strings.HasPrefix(cid, "1:") {
		return nil, fmt.Errorf("%w: %q is not a Community ID v1", ErrBadCommunityID, cid)
	}
	m := &TunnelMatch{opt: Options{TunnelDepth: MaxTunnels}, seed: seed, byCID: true}
	copy(m.cid[:], raw)
	return m, nil
}

// ErrBadCommunityID is returned for a malformed Community ID.
var ErrBadCommunityID = errors.New("decode: malformed Community ID")

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
	if m.byCID {
		return flow.CommunityIDRaw(m.seed, t) == m.cid
	}
	t.VLAN, t.InnerVLAN, t.Mirror = 0, 0, 0
	var k flow.Key
	t.KeyInto(&k)
	return k == m.key
}
