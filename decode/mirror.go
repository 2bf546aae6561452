package decode

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tapir-sensor/tapir/flow"
)

// Mirror is the encapsulation a mirror interface receives its traffic
// in (cloud traffic mirroring, remote SPAN). The zero value is no mirror.
type Mirror struct {
	// Type is TunnelVXLAN, TunnelGeneve, TunnelGRE or an ERSPAN type
	// (any ERSPAN type, I, II or III, then matches); TunnelNone is off.
	Type flow.TunnelType
	// Port is the UDP port of a VXLAN or Geneve mirror; 0 is the
	// standard port (4789, 6081). It is recognised beside
	// Options.VXLANPorts or GenevePorts, for the outermost level only.
	Port uint16
}

// MirrorKeyBase is the smallest value Decode puts in Tuple.InnerVLAN on
// a mirror interface: VLAN IDs stop at 4095, so a value from 4096 up is
// a mirror key (MirrorKey), never a VLAN.
const MirrorKeyBase = 4096

// MirrorKey is the value Decode writes into Tuple.InnerVLAN of a packet
// stripped of its mirror level with identifier id (VNI or ERSPAN session
// ID; 0 when the header has none): 4096 + id modulo 61440, so identical
// inner connections from two mirror sources are two flows. Identifiers
// 0 to 61439 (every ERSPAN session ID, the VNIs most setups pick) map
// one to one; larger VNIs and GRE keys fold, and Decode keeps them apart
// with the whole identifier in Tuple.Mirror, which is part of the flow
// key too.
func MirrorKey(id uint32) uint16 {
	return uint16(MirrorKeyBase + id%(1<<16-MirrorKeyBase))
}

// mirrorNames maps the encapsulation names ParseMirror accepts.
var mirrorNames = map[string]flow.TunnelType{
	"vxlan": flow.TunnelVXLAN, "geneve": flow.TunnelGeneve, "gre": flow.TunnelGRE, "erspan": flow.TunnelERSPAN2,
}

// ParseMirror parses "TYPE[:PORT]": TYPE is vxlan, geneve, gre or erspan
// (any ERSPAN type); PORT, for vxlan and geneve only, is the UDP port
// (default 4789, 6081).
func ParseMirror(s string) (Mirror, error) {
	name, port, hasPort := strings.Cut(s, ":")
	typ, ok := mirrorNames[name]
	if !ok {
		return Mirror{}, fmt.Errorf("mirror encapsulation %q: want vxlan, geneve, gre or erspan", name)
	}
	m := Mirror{Type: typ}
	if !hasPort {
		return m, nil
	}
	if typ != flow.TunnelVXLAN && typ != flow.TunnelGeneve {
		return Mirror{}, fmt.Errorf("mirror %q: only vxlan and geneve take a port", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Mirror{}, fmt.Errorf("mirror %q: port not in [1, 65535]", s)
	}
	m.Port = uint16(n)
	return m, nil
}

// String returns the mirror as ParseMirror reads it ("" when off).
func (m Mirror) String() string {
	name := m.Type.String()
	if m.isERSPAN() {
		name = "erspan"
	}
	switch {
	case m.Type == flow.TunnelNone:
		return ""
	case m.Port != 0:
		return name + ":" + strconv.Itoa(int(m.Port))
	}
	return name
}

// isERSPAN reports whether m is an ERSPAN mirror.
func (m Mirror) isERSPAN() bool {
	return isERSPAN(m.Type)
}

// isERSPAN reports whether t is one of the ERSPAN types.
func isERSPAN(t flow.TunnelType) bool {
	return t == flow.TunnelERSPAN1 || t == flow.TunnelERSPAN2 || t == flow.TunnelERSPAN3
}

// matches reports whether a tunnel level of type t is the mirror.
func (m Mirror) matches(t flow.TunnelType) bool {
	if m.isERSPAN() {
		return isERSPAN(t)
	}
	return m.Type != flow.TunnelNone && t == m.Type
}

// udpType returns the mirror's type when it is a UDP mirror on sport or
// dport, or TunnelNone.
func (m Mirror) udpType(sport, dport uint16) flow.TunnelType {
	var def uint16
	switch m.Type {
	case flow.TunnelVXLAN:
		def = PortVXLAN
	case flow.TunnelGeneve:
		def = PortGeneve
	default:
		return flow.TunnelNone
	}
	if m.Port != 0 {
		def = m.Port
	}
	if sport == def || dport == def {
		return m.Type
	}
	return flow.TunnelNone
}
