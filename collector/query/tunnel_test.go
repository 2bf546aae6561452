package query

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// TestParseTunnelTerms: the tunnel terms parse to their canonical form;
// bad arguments are syntax errors.
func TestParseTunnelTerms(t *testing.T) {
	for in, want := range map[string]string{
		"tunnel vxlan":              "tunnel vxlan",
		"TUNNEL ERSPAN2":            "tunnel erspan2",
		"tunnel any":                "tunnel any",
		"tunnel-id 123":             "tunnel-id 123",
		"tunnel-id 4294967295":      "tunnel-id 4294967295",
		"tunnel-host 192.0.2.1":     "tunnel-host 192.0.2.1",
		"not tunnel any and tcp":    "(not tunnel any and proto 6)",
		"tunnel gre or tunnel-id 7": "(tunnel gre or tunnel-id 7)",
	} {
		q, err := Parse(in, testNow, DefaultConfig())
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got := q.Root.String(); got != want {
			t.Errorf("Parse(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"tunnel", "tunnel none", "tunnel mpls", "tunnel-id", "tunnel-id 4294967296", "tunnel-id -1", "tunnel-host x", "tunnel ("} {
		if _, err := Parse(bad, testNow, DefaultConfig()); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// TestMatchTunnels: the tunnel terms match on any level of a record's
// chain, and never an untunnelled record.
func TestMatchTunnels(t *testing.T) {
	t0 := testNow.Add(-30 * time.Minute)
	plain := rec("10.0.0.1", "10.0.0.2", 1000, 80, flow.ProtoTCP, 0, 0, t0, t0)
	inner := rec("10.0.0.1", "10.0.0.2", 1000, 80, flow.ProtoTCP, 0, 0, t0, t0)
	a, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.1"))
	b, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.2"))
	c, fam6 := flow.AddrFromNetip(netip.MustParseAddr("2001:db8::9"))
	inner.Tunnels = flow.NewTunnelChain([]flow.Tunnel{
		{Type: flow.TunnelIPIP, Src: c, Dst: c, Family: fam6, Proto: 4},
		{Type: flow.TunnelVXLAN, Src: a, Dst: b, Family: flow.FamilyIPv4, Proto: flow.ProtoUDP, SrcPort: 5, DstPort: 4789, ID: 123, HasID: true},
	})
	for q, want := range map[string]bool{
		"tunnel any": true, "tunnel vxlan": true, "tunnel ipip": true, "tunnel gre": false,
		"tunnel-id 123": true, "tunnel-id 0": false, "tunnel-host 192.0.2.2": true, "tunnel-host 2001:db8::9": true,
		"tunnel-host 10.0.0.1": false, "not tunnel any": false,
	} {
		pq, err := Parse(q, testNow, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if got := pq.Match(inner); got != want {
			t.Errorf("%q on the tunnelled record: %v, want %v", q, got, want)
		}
		if got := pq.Match(plain); got != (q == "not tunnel any") {
			t.Errorf("%q on an untunnelled record: %v", q, got)
		}
	}
}
