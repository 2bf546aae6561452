package decode

import (
	"testing"

	"github.com/tapir-sensor/tapir/internal/encaptest"
)

func TestTunnelFilterMatch(t *testing.T) {
	frames := map[encaptest.Kind][]byte{}
	for _, k := range []encaptest.Kind{encaptest.VXLAN, encaptest.GRE, encaptest.VXLANInGR, encaptest.GTPU, encaptest.ERSPAN3} {
		fr, ok := encaptest.Wrap(k, udpFrame(), 1)
		if !ok {
			t.Fatal(k)
		}
		frames[k] = fr
	}
	arp, _ := encaptest.Wrap(encaptest.VXLAN, arpFrame(), 1)
	plain := udpFrame()
	for _, c := range []struct {
		expr  string
		frame []byte
		want  bool
	}{
		{"tunnel vxlan", frames[encaptest.VXLAN], true},
		{"tunnel vxlan", frames[encaptest.GRE], false},
		{"tunnel vxlan", frames[encaptest.VXLANInGR], true},
		{"tunnel gre and tunnel vxlan", frames[encaptest.VXLANInGR], true},
		{"tunnel any", plain, false},
		{"not tunnel any", plain, true},
		{"tunnel erspan", frames[encaptest.ERSPAN3], true},
		{"tunnel erspan2", frames[encaptest.ERSPAN3], false},
		{"tunnel-id 0x123456", frames[encaptest.VXLAN], true},
		{"tunnel-id 0x123457", frames[encaptest.VXLAN], false},
		{"tunnel-id 16909060", frames[encaptest.GTPU], true},
		{"tunnel-host 192.0.2.2", frames[encaptest.GRE], true},
		{"tunnel-host 10.0.0.1", frames[encaptest.GRE], false}, // an inner address
		{"tunnel vxlan and tunnel-id 0x123456", arp, true},     // opaque: ARP over VXLAN
		{"tunnel-host 192.0.2.1", arp, true},
		{"(tunnel gre || tunnel gtpu) && !tunnel-id 1", frames[encaptest.GTPU], true},
	} {
		f, err := ParseTunnelFilter(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		var p Packet
		Decode(LinkEthernet, c.frame, &p)
		if got := f.Match(&p); got != c.want {
			t.Errorf("%q: %v, want %v (tunnels %+v, opaque %v)", c.expr, got, c.want, p.Tunnels[:p.NTunnels], p.OpaqueTunnel)
		}
	}
}

func TestParseTunnelFilterErrors(t *testing.T) {
	if f, err := ParseTunnelFilter("  "); f != nil || err != nil {
		t.Fatalf("empty: %v %v", f, err)
	}
	for _, s := range []string{"tunnel", "tunnel foo", "tunnel-id -1", "tunnel-id 4294967296", "tunnel-host x", "(tunnel any", "tunnel any)", "and", "vlan 3", "tunnel any tunnel any"} {
		if _, err := ParseTunnelFilter(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	f, err := ParseTunnelFilter("Tunnel VXLAN&&(tunnel-id 5||!tunnel-host ::1)")
	if err != nil || f.String() != "tunnel vxlan && ( tunnel-id 5 || ! tunnel-host ::1 )" {
		t.Fatalf("%v %v", f, err)
	}
}

func TestTunnelFilterDoesNotAllocate(t *testing.T) {
	f, _ := ParseTunnelFilter("(tunnel vxlan and tunnel-id 5) or not tunnel-host 192.0.2.9")
	fr, _ := encaptest.Wrap(encaptest.VXLAN, udpFrame(), 1)
	var p Packet
	Decode(LinkEthernet, fr, &p)
	if n := testing.AllocsPerRun(100, func() { f.Match(&p) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
