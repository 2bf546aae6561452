package decode

import (
	"encoding/binary"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
)

// udpFrame is an untagged Ethernet frame with an IPv4 UDP packet
// 10.0.0.1:1234 -> 10.0.0.2:53 carrying 4 bytes.
func udpFrame() []byte {
	ip := make([]byte, 20+8+4)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[20:], 1234)
	binary.BigEndian.PutUint16(ip[22:], 53)
	binary.BigEndian.PutUint16(ip[24:], 12)
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0}
	return append(eth, ip...)
}

// arpFrame is a broadcast ARP request.
func arpFrame() []byte {
	f := make([]byte, 42)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 6})
	return f
}

func TestMirrorStripsOutermostLevel(t *testing.T) {
	var plain Packet
	Decode(LinkEthernet, udpFrame(), &plain)
	for _, c := range []struct {
		kind   encaptest.Kind
		mirror Mirror
		id     uint32
		levels uint8
	}{
		{encaptest.VXLAN, Mirror{Type: flow.TunnelVXLAN}, encaptest.VNI, 1},
		{encaptest.ERSPAN2, Mirror{Type: flow.TunnelERSPAN2}, encaptest.SessionID, 1},
		{encaptest.ERSPAN3, Mirror{Type: flow.TunnelERSPAN2}, encaptest.SessionID, 1},
		{encaptest.GRETEB, Mirror{Type: flow.TunnelGRE}, encaptest.GREKey, 1},
		{encaptest.Geneve, Mirror{Type: flow.TunnelGeneve}, encaptest.VNI, 1},
	} {
		fr, ok := encaptest.Wrap(c.kind, udpFrame(), 1)
		if !ok {
			t.Fatal(c.kind)
		}
		for _, depth := range []int{0, -1} {
			o := Options{TunnelDepth: depth, Mirror: c.mirror}
			var p Packet
			o.Decode(LinkEthernet, fr, &p)
			want := plain.Tuple
			want.InnerVLAN, want.Mirror = MirrorKey(c.id), c.id
			if p.Tuple != want || p.MirrorLevels != c.levels || p.NTunnels != 1 || !p.Tunnels[0].Mirror || p.Tunnels[0].ID != c.id {
				t.Errorf("%s depth %d: tuple %+v mirror levels %d, tunnels %+v; want %+v", c.kind, depth, p.Tuple, p.MirrorLevels, p.Tunnels[0], want)
			}
		}
	}
}

func TestMirrorOtherEncapsulationIsATunnel(t *testing.T) {
	fr, _ := encaptest.Wrap(encaptest.GRE, udpFrame(), 1)
	o := Options{Mirror: Mirror{Type: flow.TunnelVXLAN}}
	var p Packet
	o.Decode(LinkEthernet, fr, &p)
	if p.MirrorLevels != 0 || p.Tunnels[0].Mirror || p.NTunnels != 1 || p.Tuple.InnerVLAN != 0 {
		t.Fatalf("GRE on a VXLAN mirror: %+v", p)
	}
	// VXLAN inside GRE: the VXLAN level is not outermost, so no mirror.
	fr, _ = encaptest.Wrap(encaptest.VXLANInGR, udpFrame(), 1)
	o.Decode(LinkEthernet, fr, &p)
	if p.MirrorLevels != 0 || p.NTunnels != 2 || p.Tunnels[1].Mirror {
		t.Fatalf("VXLAN in GRE on a VXLAN mirror: %+v", p)
	}
}

func TestMirrorPortAndDepth(t *testing.T) {
	fr, _ := encaptest.Wrap(encaptest.VXLAN, udpFrame(), 1)
	binary.BigEndian.PutUint16(fr[14+20+2:], 4790) // VXLAN to UDP 4790
	var p Packet
	(&Options{VXLANPorts: []uint16{}, Mirror: Mirror{Type: flow.TunnelVXLAN, Port: 4790}}).Decode(LinkEthernet, fr, &p)
	if p.MirrorLevels != 1 || p.Tuple.DstPort != 53 {
		t.Fatalf("mirror on port 4790: %+v", p)
	}
	(&Options{Mirror: Mirror{Type: flow.TunnelVXLAN}}).Decode(LinkEthernet, fr, &p)
	if p.MirrorLevels != 0 || p.NTunnels != 0 || p.Tuple.DstPort != 4790 {
		t.Fatalf("mirror on 4789, frame to 4790: %+v", p)
	}
	// A VXLAN mirror carrying GRE: depth 1 counts the GRE level only.
	inner, _ := encaptest.Wrap(encaptest.GRE, udpFrame(), 1)
	fr, _ = encaptest.Wrap(encaptest.VXLAN, inner, 1)
	(&Options{TunnelDepth: 1, Mirror: Mirror{Type: flow.TunnelVXLAN}}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 2 || p.MirrorLevels != 1 || p.TunnelDepthHit || p.Tuple.DstPort != 53 {
		t.Fatalf("depth 1 below a mirror: %+v", p)
	}
	(&Options{TunnelDepth: -1, Mirror: Mirror{Type: flow.TunnelVXLAN}}).Decode(LinkEthernet, fr, &p)
	if p.NTunnels != 1 || p.MirrorLevels != 1 || p.Tuple.Proto != 47 {
		t.Fatalf("no tunnels below a mirror: %+v", p)
	}
}

func TestMirrorNonIPFrame(t *testing.T) {
	fr, _ := encaptest.Wrap(encaptest.VXLAN, arpFrame(), 1)
	var p Packet
	(&Options{Mirror: Mirror{Type: flow.TunnelVXLAN}}).Decode(LinkEthernet, fr, &p)
	off := 14 + 20 + 8 + 8
	if p.HasTuple || p.MirrorLevels != 1 || p.LinkOffset != off || p.EtherType != 0x0806 || p.Tuple.InnerVLAN != MirrorKey(encaptest.VNI) {
		t.Fatalf("ARP on a mirror: %+v", p)
	}
	Decode(LinkEthernet, fr, &p)
	if p.MirrorLevels != 0 || p.LinkOffset != 0 || p.OpaqueTunnel != flow.TunnelVXLAN {
		t.Fatalf("ARP in VXLAN, no mirror: %+v", p)
	}
}

func TestMirrorKey(t *testing.T) {
	if MirrorKey(0) != 4096 || MirrorKey(0x3ff) != 4096+0x3ff || MirrorKey(61439) != 65535 || MirrorKey(61440) != 4096 {
		t.Fatal(MirrorKey(0), MirrorKey(0x3ff), MirrorKey(61439), MirrorKey(61440))
	}
}

// TestMirrorKeysStayApart: mirror identifiers that MirrorKey folds
// together (VNIs 0 and 61440, 4095 and 16777215; GRE keys 5, 61445 and
// 0xf0000005) give distinct flow keys, each carrying its whole
// identifier in Key.Mirror beside the 16-bit mirror key in InnerVLAN.
func TestMirrorKeysStayApart(t *testing.T) {
	for _, c := range []struct {
		kind   encaptest.Kind
		mirror Mirror
		idAt   int // offset of the identifier in the wrapped frame
		ids    []uint32
	}{
		// VXLAN: Ethernet, IPv4 (20), UDP (8), then the VNI in bytes 4-6.
		{encaptest.VXLAN, Mirror{Type: flow.TunnelVXLAN}, 14 + 20 + 8 + 4, []uint32{0, 4095, 61439, 61440, 16777215}},
		// GRE with checksum and key: the key after 4 bytes of checksum.
		{encaptest.GRETEB, Mirror{Type: flow.TunnelGRE}, 14 + 20 + 8, []uint32{5, 61445, 0xf0000005, 0xffffffff}},
	} {
		keys := map[flow.Key]uint32{}
		for _, id := range c.ids {
			fr, ok := encaptest.Wrap(c.kind, udpFrame(), 1)
			if !ok {
				t.Fatal(c.kind)
			}
			if c.kind == encaptest.VXLAN {
				binary.BigEndian.PutUint32(fr[c.idAt:], id<<8)
			} else {
				binary.BigEndian.PutUint32(fr[c.idAt:], id)
			}
			o := Options{Mirror: c.mirror}
			var p Packet
			o.Decode(LinkEthernet, fr, &p)
			if !p.HasTuple || p.MirrorLevels != 1 || p.Tunnels[0].ID != id {
				t.Fatalf("%s %d: %+v", c.kind, id, p)
			}
			k, _ := p.Tuple.Key()
			if k.Mirror != id || k.InnerVLAN != MirrorKey(id) {
				t.Errorf("%s %d: key mirror %d inner_vlan %d, want %d and %d", c.kind, id, k.Mirror, k.InnerVLAN, id, MirrorKey(id))
			}
			if other, dup := keys[k]; dup {
				t.Errorf("%s: identifiers %d and %d share a flow key", c.kind, other, id)
			}
			keys[k] = id
		}
	}
}

func TestParseMirror(t *testing.T) {
	for s, want := range map[string]Mirror{
		"vxlan": {Type: flow.TunnelVXLAN}, "vxlan:4790": {Type: flow.TunnelVXLAN, Port: 4790},
		"geneve": {Type: flow.TunnelGeneve}, "gre": {Type: flow.TunnelGRE}, "erspan": {Type: flow.TunnelERSPAN2},
	} {
		m, err := ParseMirror(s)
		if err != nil || m != want || m.String() != s {
			t.Errorf("%q: %+v %v (%q)", s, m, err, m.String())
		}
	}
	for _, s := range []string{"", "erspan2", "gre:1", "vxlan:0", "vxlan:65536", "vxlan:"} {
		if _, err := ParseMirror(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestMirrorDecodeDoesNotAllocate(t *testing.T) {
	fr, _ := encaptest.Wrap(encaptest.VXLAN, arpFrame(), 1)
	fr2, _ := encaptest.Wrap(encaptest.ERSPAN2, udpFrame(), 1)
	o := &Options{Mirror: Mirror{Type: flow.TunnelVXLAN}}
	var p Packet
	if n := testing.AllocsPerRun(100, func() { o.Decode(LinkEthernet, fr, &p); o.Decode(LinkEthernet, fr2, &p) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
