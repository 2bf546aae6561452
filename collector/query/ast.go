package query

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Node is one node of a query's syntax tree. Nodes are immutable after
// parsing and safe for concurrent use.
type Node interface {
	// Match reports whether the flow record satisfies the node.
	Match(r *flow.Record) bool
	// String renders the node in canonical query syntax; parsing the
	// result yields an equivalent tree.
	String() string
	// bounds returns the time interval outside which the node cannot
	// match; zero times mean unbounded.
	bounds() (lo, hi time.Time)
}

// And matches when every operand matches.
type And []Node

// Or matches when any operand matches.
type Or []Node

// Not inverts its operand.
type Not struct{ X Node }

// Dir is tcpdump's direction qualifier of host, net, port and portrange.
// A flow's source is its initiator (the sender of the first SYN, else of
// the first packet the sensor saw) and its destination the responder:
// tcpdump qualifies each packet, tapir each flow.
type Dir uint8

// Directions.
const (
	DirEither Dir = iota // no qualifier, or "src or dst": either end
	DirSrc               // "src": the source end
	DirDst               // "dst": the destination end
	DirBoth              // "src and dst": both ends
)

// match combines whether the source and the destination end match.
func (d Dir) match(src, dst bool) bool {
	switch d {
	case DirSrc:
		return src
	case DirDst:
		return dst
	case DirBoth:
		return src && dst
	}
	return src || dst
}

// prefix is the qualifier as written before the term's type.
func (d Dir) prefix() string {
	switch d {
	case DirSrc:
		return "src "
	case DirDst:
		return "dst "
	case DirBoth:
		return "src and dst "
	}
	return ""
}

// Host matches flows with the address at the end(s) Dir names (either
// end by default).
type Host struct {
	Addr netip.Addr
	Dir  Dir
}

// Net matches flows with the end(s) Dir names inside the prefix.
type Net struct {
	Prefix netip.Prefix
	Dir    Dir
}

// Port matches flows of a ported protocol (TCP, UDP, SCTP) with the port
// at the end(s) Dir names. ICMP type and code never match a port.
type Port struct {
	Port uint16
	Dir  Dir
}

// PortRange matches flows of a ported protocol with a port in [Lo, Hi]
// at the end(s) Dir names.
type PortRange struct {
	Lo, Hi uint16
	Dir    Dir
}

// Family matches the IP version: "ip" IPv4, "ip6" IPv6.
type Family struct{ V6 bool }

// Proto matches the IP protocol. ICMP set matches ICMPv6 too (the "icmp"
// keyword), so that "icmp" finds both families.
type Proto struct {
	Proto uint8
	ICMP  bool // match ICMP and ICMPv6
}

// VLAN matches the outer or inner VLAN ID.
type VLAN struct{ ID uint16 }

// Tunnel matches flows found inside a tunnel of the type (any type when
// Type is flow.TunnelNone) at any level of their chain.
type Tunnel struct{ Type flow.TunnelType }

// TunnelID matches flows with a tunnel level whose identifier (VXLAN or
// Geneve VNI, GRE key, ERSPAN session ID, GTP-U TEID) is ID.
type TunnelID struct{ ID uint32 }

// TunnelHost matches flows with a tunnel level whose outer address, at
// either end, is Addr.
type TunnelHost struct{ Addr netip.Addr }

// After matches flows still active at or after T (their End is not before T).
type After struct{ T time.Time }

// Before matches flows that started at or before T.
type Before struct{ T time.Time }

// Match implements Node.
func (n And) Match(r *flow.Record) bool {
	for _, x := range n {
		if !x.Match(r) {
			return false
		}
	}
	return true
}

// Match implements Node.
func (n Or) Match(r *flow.Record) bool {
	for _, x := range n {
		if x.Match(r) {
			return true
		}
	}
	return false
}

// Match implements Node.
func (n Not) Match(r *flow.Record) bool { return !n.X.Match(r) }

// Match implements Node.
func (n Host) Match(r *flow.Record) bool {
	a, fam := flow.AddrFromNetip(n.Addr)
	t := &r.Tuple
	return t.Family == fam && n.Dir.match(t.Src == a, t.Dst == a)
}

// Match implements Node.
func (n Net) Match(r *flow.Record) bool {
	t := &r.Tuple
	want := uint8(flow.FamilyIPv6)
	if n.Prefix.Addr().Is4() {
		want = flow.FamilyIPv4
	}
	if t.Family != want {
		return false
	}
	return n.Dir.match(n.Prefix.Contains(t.Src.Netip(t.Family)), n.Prefix.Contains(t.Dst.Netip(t.Family)))
}

// Match implements Node.
func (n Port) Match(r *flow.Record) bool {
	t := &r.Tuple
	return flow.HasPorts(t.Proto) && n.Dir.match(t.SrcPort == n.Port, t.DstPort == n.Port)
}

// Match implements Node.
func (n PortRange) Match(r *flow.Record) bool {
	t := &r.Tuple
	in := func(p uint16) bool { return p >= n.Lo && p <= n.Hi }
	return flow.HasPorts(t.Proto) && n.Dir.match(in(t.SrcPort), in(t.DstPort))
}

// Match implements Node.
func (n Family) Match(r *flow.Record) bool {
	if n.V6 {
		return r.Tuple.Family == flow.FamilyIPv6
	}
	return r.Tuple.Family == flow.FamilyIPv4
}

// Match implements Node.
func (n Proto) Match(r *flow.Record) bool {
	if n.ICMP {
		return r.Tuple.Proto == flow.ProtoICMP || r.Tuple.Proto == flow.ProtoICMPv6
	}
	return r.Tuple.Proto == n.Proto
}

// Match implements Node.
func (n VLAN) Match(r *flow.Record) bool {
	return r.Tuple.VLAN == n.ID || (r.Tuple.InnerVLAN != 0 && r.Tuple.InnerVLAN == n.ID)
}

// levels returns the record's tunnel levels (none outside a tunnel).
func levels(r *flow.Record) []flow.Tunnel {
	if r.Tunnels == nil {
		return nil
	}
	return r.Tunnels.Levels
}

// Match implements Node.
func (n Tunnel) Match(r *flow.Record) bool {
	for _, l := range levels(r) {
		if n.Type == flow.TunnelNone || l.Type == n.Type {
			return true
		}
	}
	return false
}

// Match implements Node.
func (n TunnelID) Match(r *flow.Record) bool {
	for _, l := range levels(r) {
		if l.HasID && l.ID == n.ID {
			return true
		}
	}
	return false
}

// Match implements Node.
func (n TunnelHost) Match(r *flow.Record) bool {
	a, fam := flow.AddrFromNetip(n.Addr)
	for _, l := range levels(r) {
		if l.Family == fam && (l.Src == a || l.Dst == a) {
			return true
		}
	}
	return false
}

// Match implements Node.
func (n After) Match(r *flow.Record) bool {
	end := r.End
	if end.IsZero() {
		end = r.Start
	}
	return !end.Before(n.T)
}

// Match implements Node.
func (n Before) Match(r *flow.Record) bool { return !r.Start.After(n.T) }

func joinNodes(ns []Node, op string) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, x := range ns {
		if i > 0 {
			b.WriteString(op)
		}
		b.WriteString(x.String())
	}
	b.WriteByte(')')
	return b.String()
}

func (n And) String() string        { return joinNodes(n, " and ") }
func (n Or) String() string         { return joinNodes(n, " or ") }
func (n Not) String() string        { return "not " + n.X.String() }
func (n Host) String() string       { return n.Dir.prefix() + "host " + n.Addr.String() }
func (n Net) String() string        { return n.Dir.prefix() + "net " + n.Prefix.String() }
func (n Port) String() string       { return n.Dir.prefix() + "port " + strconv.Itoa(int(n.Port)) }
func (n VLAN) String() string       { return "vlan " + strconv.Itoa(int(n.ID)) }
func (n TunnelID) String() string   { return "tunnel-id " + strconv.FormatUint(uint64(n.ID), 10) }
func (n TunnelHost) String() string { return "tunnel-host " + n.Addr.String() }
func (n After) String() string      { return "after " + n.T.UTC().Format(time.RFC3339Nano) }
func (n Before) String() string     { return "before " + n.T.UTC().Format(time.RFC3339Nano) }

func (n Tunnel) String() string {
	if n.Type == flow.TunnelNone {
		return "tunnel any"
	}
	return "tunnel " + n.Type.String()
}

func (n PortRange) String() string {
	return n.Dir.prefix() + "portrange " + strconv.Itoa(int(n.Lo)) + "-" + strconv.Itoa(int(n.Hi))
}

func (n Family) String() string {
	if n.V6 {
		return "ip6"
	}
	return "ip"
}

func (n Proto) String() string {
	if n.ICMP {
		return "icmp"
	}
	return "proto " + strconv.Itoa(int(n.Proto))
}

// Time bounds. Zero lo means -inf, zero hi means +inf.

func (n And) bounds() (lo, hi time.Time) {
	for _, x := range n {
		l, h := x.bounds()
		if !l.IsZero() && (lo.IsZero() || l.After(lo)) {
			lo = l
		}
		if !h.IsZero() && (hi.IsZero() || h.Before(hi)) {
			hi = h
		}
	}
	return lo, hi
}

func (n Or) bounds() (lo, hi time.Time) {
	for i, x := range n {
		l, h := x.bounds()
		if i == 0 {
			lo, hi = l, h
			continue
		}
		if lo.IsZero() || l.IsZero() {
			lo = time.Time{}
		} else if l.Before(lo) {
			lo = l
		}
		if hi.IsZero() || h.IsZero() {
			hi = time.Time{}
		} else if h.After(hi) {
			hi = h
		}
	}
	return lo, hi
}

// A negation bounds nothing (conservatively).
func (Not) bounds() (lo, hi time.Time)        { return }
func (Host) bounds() (lo, hi time.Time)       { return }
func (Net) bounds() (lo, hi time.Time)        { return }
func (Port) bounds() (lo, hi time.Time)       { return }
func (PortRange) bounds() (lo, hi time.Time)  { return }
func (Family) bounds() (lo, hi time.Time)     { return }
func (Proto) bounds() (lo, hi time.Time)      { return }
func (VLAN) bounds() (lo, hi time.Time)       { return }
func (Tunnel) bounds() (lo, hi time.Time)     { return }
func (TunnelID) bounds() (lo, hi time.Time)   { return }
func (TunnelHost) bounds() (lo, hi time.Time) { return }
func (n After) bounds() (lo, hi time.Time)    { return n.T, time.Time{} }
func (n Before) bounds() (lo, hi time.Time)   { return time.Time{}, n.T }
