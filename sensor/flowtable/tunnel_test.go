package flowtable

import (
	"testing"

	"github.com/tapir-sensor/tapir/flow"
)

// vxlanChain is a one-level VXLAN chain with the given VNI.
func vxlanChain(vni uint32) []flow.Tunnel {
	o := tuple(flow.ProtoUDP, "192.0.2.1", 40000, "192.0.2.2", 4789)
	return []flow.Tunnel{{Type: flow.TunnelVXLAN, Src: o.Src, Dst: o.Dst, Family: o.Family, Proto: flow.ProtoUDP,
		SrcPort: 40000, DstPort: 4789, ID: vni, HasID: true}}
}

// TestTunnelChainInRecords: a flow opened by a tunnelled packet carries
// that packet's chain in every record (update and final), copied (the
// caller's slice may change); a packet of the flow through another chain
// or none is counted and leaves the chain as it is; an untunnelled flow
// has none, also after a tunnelled flow's slot is reused.
func TestTunnelChainInRecords(t *testing.T) {
	cfg := longConfig()
	cfg.UpdateInterval = 10 * 1e9
	tab, rec := newTable(t, cfg)
	in := tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 80)
	chain := vxlanChain(7)
	send := func(tup flow.Tuple, at int64, flags uint8, tun []flow.Tunnel) {
		tab.Advance(at)
		p := PacketInfo{Tuple: tup, Time: at, WireLen: 100, CapLen: 100, TCPFlags: flags, Tunnels: tun}
		tab.Packet(&p)
	}
	send(in, 1*sec, syn, chain)
	chain[0].ID = 99 // the caller reuses its packet
	send(in.Reverse(), 2*sec, synack, vxlanChain(7))
	send(in, 3*sec, ack, vxlanChain(8)) // another VNI
	send(in, 4*sec, ack, nil)           // no tunnel
	send(in, 15*sec, ack, vxlanChain(7))
	send(in, 16*sec, flow.TCPFlagRST, vxlanChain(7))
	tab.Flush(flow.ReasonEndOfCapture)
	if s := tab.Stats(); s.TunnelledFlows != 1 || s.TunnelChainChanged != 2 {
		t.Errorf("tunnelled flows %d, chain changes %d; want 1, 2", s.TunnelledFlows, s.TunnelChainChanged)
	}
	if len(rec.recs) < 2 {
		t.Fatalf("%d records, want an update and a final record", len(rec.recs))
	}
	for _, r := range rec.recs {
		if !r.Tunnels.Equal(vxlanChain(7)) {
			t.Errorf("%v record: chain %+v, want VNI 7", r.Reason, r.Tunnels)
		}
	}
	if len(tab.tunnels) != 0 {
		t.Errorf("%d chains kept after every flow ended", len(tab.tunnels))
	}

	rec.recs = nil
	send(tuple(flow.ProtoUDP, "10.0.0.3", 53, "10.0.0.4", 53), 20*sec, 0, nil) // reuses the slot
	tab.Flush(flow.ReasonEndOfCapture)
	if len(rec.recs) != 1 || rec.recs[0].Tunnels != nil {
		t.Fatalf("untunnelled flow: %d records, chain %+v", len(rec.recs), rec.recs[0].Tunnels)
	}
	if s := tab.Stats(); s.TunnelChainChanged != 2 {
		t.Errorf("an untunnelled flow changed the chain count to %d", s.TunnelChainChanged)
	}
}

// TestTunnelChainUntunnelledFirst: a flow opened outside a tunnel keeps
// no chain when a later packet comes through one (counted).
func TestTunnelChainUntunnelledFirst(t *testing.T) {
	tab, rec := newTable(t, longConfig())
	in := tuple(flow.ProtoUDP, "10.0.0.1", 1000, "10.0.0.2", 53)
	tab.Packet(&PacketInfo{Tuple: in, Time: sec, WireLen: 60, CapLen: 60})
	tab.Packet(&PacketInfo{Tuple: in.Reverse(), Time: 2 * sec, WireLen: 60, CapLen: 60, Tunnels: vxlanChain(1)})
	tab.Flush(flow.ReasonEndOfCapture)
	if len(rec.recs) != 1 || rec.recs[0].Tunnels != nil || tab.Stats().TunnelChainChanged != 1 {
		t.Fatalf("records %d, chain %+v, changes %d", len(rec.recs), rec.recs[0].Tunnels, tab.Stats().TunnelChainChanged)
	}
}

// TestTunnelChainReplies: replies through the same tunnel reversed, with
// another VXLAN source port, are no change; a flow first seen by its
// SYN-ACK keeps the chain oriented initiator to responder, as its tuple.
func TestTunnelChainReplies(t *testing.T) {
	tab, rec := newTable(t, longConfig())
	in := tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 80)
	back := vxlanChain(7)
	back[0] = back[0].Reverse()
	back[0].SrcPort = 51000
	tab.Packet(&PacketInfo{Tuple: in.Reverse(), Time: sec, WireLen: 60, CapLen: 60, TCPFlags: synack, Tunnels: back})
	tab.Packet(&PacketInfo{Tuple: in, Time: 2 * sec, WireLen: 60, CapLen: 60, TCPFlags: ack, Tunnels: vxlanChain(7)})
	tab.Flush(flow.ReasonEndOfCapture)
	if n := tab.Stats().TunnelChainChanged; n != 0 {
		t.Errorf("replies counted as %d chain changes", n)
	}
	if len(rec.recs) != 1 {
		t.Fatalf("%d records", len(rec.recs))
	}
	r := rec.recs[0]
	want := back[0].Reverse()
	if r.Tuple.Src != in.Src || r.Tunnels.Len() != 1 || r.Tunnels.Levels[0] != want {
		t.Errorf("initiator %v, chain %+v; want %v, %+v", r.Tuple.Src, r.Tunnels, in.Src, want)
	}
}

// TestTunnelFlow: with TunnelFlows, tunnelled packets in both directions
// (the replies with another VXLAN source port are another tunnel
// connection) are also counted in the flow of their outermost tunnel's
// own connection: packets and bytes as on the wire, nothing stored, the
// level as its chain oriented as its tuple; a mirror level is skipped
// for the level inside it, and a chain of only a mirror level makes no
// tunnel flow; untunnelled packets make none; without TunnelFlows there
// is none.
func TestTunnelFlow(t *testing.T) {
	cfg := longConfig()
	cfg.TunnelFlows = true
	tab, rec := newTable(t, cfg)
	in := tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 80)
	send := func(tup flow.Tuple, at int64, tun []flow.Tunnel) {
		tab.Packet(&PacketInfo{Tuple: tup, Time: at, WireLen: 150, CapLen: 150, Tunnels: tun})
	}
	send(in, sec, vxlanChain(7))
	send(in, 2*sec, vxlanChain(7))
	mirror := vxlanChain(9)
	mirror[0].Mirror = true
	send(tuple(flow.ProtoUDP, "10.0.0.5", 53, "10.0.0.6", 53), 3*sec, mirror) // mirror only: no tunnel flow
	gre := flow.Tunnel{Type: flow.TunnelGRE, Proto: 47, Family: flow.FamilyIPv4}
	g := tuple(flow.ProtoUDP, "198.51.100.1", 0, "198.51.100.2", 0)
	gre.Src, gre.Dst = g.Src, g.Dst
	send(tuple(flow.ProtoUDP, "10.0.0.7", 53, "10.0.0.8", 53), 4*sec, append(mirror, gre))
	send(tuple(flow.ProtoUDP, "10.0.0.9", 53, "10.0.0.10", 53), 5*sec, nil)
	tab.Flush(flow.ReasonEndOfCapture)

	var tunnelFlows []flow.Record
	for _, r := range rec.recs {
		if r.IsTunnelFlow() {
			tunnelFlows = append(tunnelFlows, r)
		}
	}
	if len(rec.recs) != 6 || len(tunnelFlows) != 2 || tab.Stats().TunnelFlows != 2 {
		t.Fatalf("%d records, %d tunnel flows (stats %d); want 6, 2", len(rec.recs), len(tunnelFlows), tab.Stats().TunnelFlows)
	}
	v, gr := tunnelFlows[0], tunnelFlows[1]
	if v.Tunnels.Levels[0].Type != flow.TunnelVXLAN {
		v, gr = gr, v
	}
	outer := vxlanChain(7)
	if v.Tuple != outer[0].Tuple() || v.Source.Packets != 2 || v.Source.Bytes != 300 || v.Source.StoredPackets != 0 ||
		!v.Tunnels.Equal(outer) || v.CommunityID != flow.CommunityID(0, outer[0].Tuple()) {
		t.Errorf("VXLAN tunnel flow %+v", v)
	}
	if gr.Tuple != gre.Tuple() || gr.Source.Packets != 1 || gr.Tunnels.Levels[0].Mirror {
		t.Errorf("GRE tunnel flow inside the mirror %+v", gr)
	}

	cfg.TunnelFlows = false
	off, rec := newTable(t, cfg)
	off.Packet(&PacketInfo{Tuple: in, Time: sec, WireLen: 150, CapLen: 150, Tunnels: vxlanChain(7)})
	off.Flush(flow.ReasonEndOfCapture)
	if len(rec.recs) != 1 || rec.recs[0].IsTunnelFlow() {
		t.Errorf("TunnelFlows off: %d records", len(rec.recs))
	}
}
