package tapirv1_test

import (
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

func TestRecordRoundTrip(t *testing.T) {
	start := time.Unix(1700000000, 5).UTC()
	for _, fam := range []string{"10.1.2.3", "2001:db8::1"} {
		src, f := flow.AddrFromNetip(netip.MustParseAddr(fam))
		r := flow.Record{ID: flow.NewID(start, 1, 2), SensorID: "s", CommunityID: "1:x",
			Tuple:  flow.Tuple{Src: src, Dst: src, SrcPort: 1, DstPort: 2, Proto: 17, Family: f, VLAN: 4095, InnerVLAN: 1},
			Source: flow.DirStats{Packets: 1, Bytes: 2, StoredPackets: 1, StoredBytes: 2, First: start, Last: start, TCPFlags: 3},
			Start:  start, End: start.Add(time.Hour), Reason: flow.ReasonActive, Segment: 4, Truncated: 5, BudgetCut: 6}
		wire, err := proto.Marshal(tapirv1.FromRecord(&r, nil))
		if err != nil {
			t.Fatal(err)
		}
		var p tapirv1.FlowRecord
		if err := proto.Unmarshal(wire, &p); err != nil {
			t.Fatal(err)
		}
		var got flow.Record
		if err := tapirv1.ToRecord(&p, &got); err != nil {
			t.Fatal(err)
		}
		if got != r {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestToRecordRejects(t *testing.T) {
	good := func() *tapirv1.FlowRecord {
		r := flow.Record{ID: flow.NewID(time.Unix(1, 0), 1, 1), Tuple: flow.Tuple{Family: flow.FamilyIPv4, Proto: 6}}
		return tapirv1.FromRecord(&r, nil)
	}
	var r flow.Record
	if err := tapirv1.ToRecord(good(), &r); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
	for name, mut := range map[string]func(*tapirv1.FlowRecord){
		"nil source": func(p *tapirv1.FlowRecord) { p.Source = nil },
		"short id":   func(p *tapirv1.FlowRecord) { p.FlowId = p.FlowId[:3] },
		"ip len":     func(p *tapirv1.FlowRecord) { p.Source.Ip = []byte{1, 2, 3} },
		"mixed fam":  func(p *tapirv1.FlowRecord) { p.Source.Ip = make([]byte, 16) },
		"proto":      func(p *tapirv1.FlowRecord) { p.Protocol = 300 },
		"port":       func(p *tapirv1.FlowRecord) { p.Source.Port = 70000 },
		"vlan":       func(p *tapirv1.FlowRecord) { p.Vlan = 5000 },
		"reason":     func(p *tapirv1.FlowRecord) { p.Reason = "bogus" },
	} {
		p := good()
		mut(p)
		if err := tapirv1.ToRecord(p, &r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := tapirv1.ToRecord(nil, &r); err == nil {
		t.Error("nil accepted")
	}
}

// TestTunnelsRoundTrip: a tunnel chain (IPv6 and IPv4 levels, with and
// without an identifier, an identifier of 0) survives the wire.
func TestTunnelsRoundTrip(t *testing.T) {
	start := time.Unix(1700000000, 5).UTC()
	o4a, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.1"))
	o4b, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.2"))
	o6a, _ := flow.AddrFromNetip(netip.MustParseAddr("2001:db8::1"))
	o6b, _ := flow.AddrFromNetip(netip.MustParseAddr("2001:db8::2"))
	chain := []flow.Tunnel{
		{Type: flow.TunnelGRE, Src: o6a, Dst: o6b, Family: flow.FamilyIPv6, Proto: 47, ID: 0xdeadbeef, HasID: true},
		{Type: flow.TunnelVXLAN, Src: o4a, Dst: o4b, Family: flow.FamilyIPv4, Proto: 17, SrcPort: 999, DstPort: 4789, HasID: true},
		{Type: flow.TunnelIPIP, Src: o4b, Dst: o4a, Family: flow.FamilyIPv4, Proto: 4},
	}
	r := flow.Record{ID: flow.NewID(start, 1, 2), Tuple: flow.Tuple{Src: o4a, Dst: o4b, Proto: 6, Family: flow.FamilyIPv4},
		Start: start, End: start, Reason: flow.ReasonFIN, Tunnels: flow.NewTunnelChain(chain)}
	wire, err := proto.Marshal(tapirv1.FromRecord(&r, nil))
	if err != nil {
		t.Fatal(err)
	}
	var p tapirv1.FlowRecord
	if err := proto.Unmarshal(wire, &p); err != nil {
		t.Fatal(err)
	}
	var got flow.Record
	if err := tapirv1.ToRecord(&p, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Tunnels.Equal(chain) {
		t.Fatalf("tunnels:\n got %+v\nwant %+v", got.Tunnels, chain)
	}
	got.Tunnels, r.Tunnels = nil, nil
	if got != r {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	r.Tunnels = nil
	if fr := tapirv1.FromRecord(&r, &p); fr.Tunnels != nil {
		t.Fatalf("untunnelled record reusing a wire record keeps %d tunnels", len(fr.Tunnels))
	}
	for name, mut := range map[string]func(*tapirv1.Tunnel){
		"type":     func(w *tapirv1.Tunnel) { w.Type = "none" },
		"ip len":   func(w *tapirv1.Tunnel) { w.SourceIp = w.SourceIp[:3] },
		"mixed":    func(w *tapirv1.Tunnel) { w.DestinationIp = make([]byte, 16) },
		"port":     func(w *tapirv1.Tunnel) { w.SourcePort = 70000 },
		"protocol": func(w *tapirv1.Tunnel) { w.Protocol = 256 },
	} {
		r.Tunnels = flow.NewTunnelChain(chain[1:])
		fr := tapirv1.FromRecord(&r, nil)
		mut(fr.Tunnels[0])
		if err := tapirv1.ToRecord(fr, &got); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
