package recordcodec_test

import (
	"net/netip"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

// TestMirrorLevelRoundTrips: a tunnel level's mirror flag (a mirror
// interface's encapsulation) is stored and read back.
func TestMirrorLevelRoundTrips(t *testing.T) {
	a, fam := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.1"))
	b, _ := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.2"))
	want := []flow.Tunnel{
		{Type: flow.TunnelVXLAN, Src: a, Dst: b, Family: fam, Proto: flow.ProtoUDP, SrcPort: 49152, DstPort: 4789, ID: 7, HasID: true, Mirror: true},
		{Type: flow.TunnelGRE, Src: b, Dst: a, Family: fam, Proto: 47},
	}
	r := flow.Record{Tunnels: &flow.TunnelChain{Levels: want}}
	v, err := recordcodec.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	var got flow.Record
	if err := recordcodec.Decode(v, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Tunnels.Equal(want) {
		t.Fatalf("tunnels %+v, want %+v", got.Tunnels, want)
	}
}
