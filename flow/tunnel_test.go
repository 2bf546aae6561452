package flow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// tunnelRecord is a TCP flow found inside VXLAN inside GRE over IPv6.
func tunnelRecord() *Record {
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tp := Tuple{Src: AddrFrom4([4]byte{10, 0, 0, 1}), Dst: AddrFrom4([4]byte{10, 0, 0, 2}),
		SrcPort: 40000, DstPort: 80, Proto: ProtoTCP, Family: FamilyIPv4}
	var s6, d6 Addr
	s6[0], s6[1], s6[15] = 0x20, 0x01, 1
	d6[0], d6[1], d6[15] = 0x20, 0x01, 2
	return &Record{ID: NewID(start, SensorHash("s1"), 1), SensorID: "s1", Tuple: tp, Start: start, End: start, Reason: ReasonFIN,
		Tunnels: &TunnelChain{Levels: []Tunnel{
			{Type: TunnelGRE, Src: s6, Dst: d6, Family: FamilyIPv6, Proto: 47, ID: 0xdeadbeef, HasID: true},
			{Type: TunnelVXLAN, Src: AddrFrom4([4]byte{192, 0, 2, 1}), Dst: AddrFrom4([4]byte{192, 0, 2, 2}), Family: FamilyIPv4,
				Proto: ProtoUDP, SrcPort: 5555, DstPort: 4789, ID: 0, HasID: true},
			{Type: TunnelIPIP, Src: AddrFrom4([4]byte{192, 0, 2, 3}), Dst: AddrFrom4([4]byte{192, 0, 2, 4}), Family: FamilyIPv4, Proto: 4},
		}}}
}

// TestECSTunnels: a record's tunnel chain is rendered as tapir.tunnels,
// outermost first, each identifier under its type's name (a VNI of 0
// included), ports for UDP tunnels only.
func TestECSTunnels(t *testing.T) {
	b, err := tunnelRecord().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `"tunnels":[` +
		`{"type":"gre","source":{"ip":"2001::1"},"destination":{"ip":"2001::2"},"iana_number":"47","key":3735928559},` +
		`{"type":"vxlan","source":{"ip":"192.0.2.1","port":5555},"destination":{"ip":"192.0.2.2","port":4789},"iana_number":"17","vni":0},` +
		`{"type":"ipip","source":{"ip":"192.0.2.3"},"destination":{"ip":"192.0.2.4"},"iana_number":"4"}]}`
	if !strings.Contains(string(b), want) {
		t.Fatalf("ECS JSON %s\nlacks %s", b, want)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
}

// TestECSNoTunnels: an untunnelled record has no tunnels field.
func TestECSNoTunnels(t *testing.T) {
	r := tunnelRecord()
	r.Tunnels = nil
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "tunnel") {
		t.Fatalf("untunnelled record renders a tunnel field: %s", b)
	}
}

// TestTunnelTypeNames: every type's name parses back; identifiers are
// named per type.
func TestTunnelTypeNames(t *testing.T) {
	for ty := TunnelIPIP; ty < NumTunnelTypes; ty++ {
		if got, ok := ParseTunnelType(ty.String()); !ok || got != ty {
			t.Errorf("ParseTunnelType(%q) = %v, %v", ty.String(), got, ok)
		}
	}
	if _, ok := ParseTunnelType("none"); ok {
		t.Error(`"none" parses`)
	}
	for ty, want := range map[TunnelType]string{TunnelVXLAN: "vni", TunnelGeneve: "vni", TunnelGRE: "key",
		TunnelERSPAN2: "session_id", TunnelGTPU: "teid", TunnelIPIP: "", TunnelTeredo: ""} {
		if got := ty.IDName(); got != want {
			t.Errorf("%v.IDName() = %q, want %q", ty, got, want)
		}
	}
}

// TestTunnelChainEqual: a chain equals its own levels; nil equals none.
func TestTunnelChainEqual(t *testing.T) {
	c := tunnelRecord().Tunnels
	if !c.Equal(c.Levels) || c.Equal(c.Levels[:1]) || c.Equal(nil) {
		t.Error("Equal on a chain")
	}
	var none *TunnelChain
	if !none.Equal(nil) || none.Equal(c.Levels) || none.Len() != 0 || NewTunnelChain(nil) != nil {
		t.Error("nil chain")
	}
	if d := NewTunnelChain(c.Levels); &d.Levels[0] == &c.Levels[0] || !d.Equal(c.Levels) {
		t.Error("NewTunnelChain does not copy")
	}
}

// TestTunnelChainSame: a chain is the same as its reverse and as itself
// with other ports, not as one with another identifier, type or address.
func TestTunnelChainSame(t *testing.T) {
	c := tunnelRecord().Tunnels
	rev := make([]Tunnel, len(c.Levels))
	for i, l := range c.Levels {
		rev[i] = l.Reverse()
		rev[i].SrcPort++
	}
	if !c.Same(c.Levels) || !c.Same(rev) {
		t.Error("a chain is not the same as itself reversed, other ports")
	}
	for name, mut := range map[string]func(*Tunnel){
		"id":      func(l *Tunnel) { l.ID++ },
		"has id":  func(l *Tunnel) { l.HasID = !l.HasID },
		"type":    func(l *Tunnel) { l.Type = TunnelGeneve },
		"address": func(l *Tunnel) { l.Dst = l.Src },
		"proto":   func(l *Tunnel) { l.Proto++ },
	} {
		o := append([]Tunnel(nil), c.Levels...)
		mut(&o[1])
		if c.Same(o) {
			t.Errorf("%s changed: still the same", name)
		}
	}
	if c.Same(c.Levels[:2]) || !(*TunnelChain)(nil).Same(nil) {
		t.Error("lengths")
	}
}

// TestIsTunnelFlow: a record whose one-level chain is its own connection
// (VLANs aside) is a tunnel flow, tapir.tunnel_flow in ECS; an inner
// flow with the same chain is not.
func TestIsTunnelFlow(t *testing.T) {
	l := Tunnel{Type: TunnelVXLAN, Proto: ProtoUDP, Family: FamilyIPv4, SrcPort: 49152, DstPort: 4789, ID: 7, HasID: true}
	l.Src[15], l.Dst[15] = 1, 2
	own := l.Tuple()
	own.VLAN = 10
	r := Record{Tuple: own, Tunnels: NewTunnelChain([]Tunnel{l})}
	if !r.IsTunnelFlow() || !strings.Contains(string(mustJSON(t, &r)), `"tunnel_flow":true`) {
		t.Errorf("tunnel's own record: IsTunnelFlow %v, JSON %s", r.IsTunnelFlow(), mustJSON(t, &r))
	}
	inner := r
	inner.Tuple.Proto, inner.Tuple.SrcPort, inner.Tuple.DstPort = ProtoTCP, 1000, 80
	if inner.IsTunnelFlow() || strings.Contains(string(mustJSON(t, &inner)), "tunnel_flow") {
		t.Error("an inner flow is a tunnel flow")
	}
}

func mustJSON(t *testing.T, r *Record) []byte {
	t.Helper()
	b, err := r.ToECS().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
