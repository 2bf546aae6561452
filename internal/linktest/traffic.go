package linktest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// Traffic is flow records and encoded packet blocks derived from a real
// capture.
type Traffic struct {
	Records []flow.Record
	Blocks  [][]byte
	Packets int
}

// CaptureTraffic reads the shared captures community-id-spec/tcp.pcap and
// udp.pcap and turns them into one record per flow and one block per
// (flow, up to perBlock packets), labelled with sensorID. Expected values
// in tests come from these inputs, not from constants.
func CaptureTraffic(t testing.TB, sensorID string, perBlock int) *Traffic {
	t.Helper()
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	tb := &trafficBuilder{t: t, sensorID: sensorID, perBlock: perBlock, enc: enc, flows: map[flow.Key]*trafficFlow{}}
	for _, name := range []string{"community-id-spec/tcp.pcap", "community-id-spec/udp.pcap"} {
		tb.readCapture(name)
	}
	for _, k := range tb.order {
		tb.emit(tb.flows[k])
		tb.tr.Records = append(tb.tr.Records, *tb.flows[k].rec)
	}
	if len(tb.tr.Records) == 0 || len(tb.tr.Blocks) == 0 {
		t.Fatal(fmt.Errorf("no traffic derived from the captures"))
	}
	return &tb.tr
}

// trafficBuilder accounts packets to flows and cuts their blocks.
type trafficBuilder struct {
	t        testing.TB
	sensorID string
	perBlock int
	enc      *block.Encoder
	tr       Traffic
	flows    map[flow.Key]*trafficFlow
	order    []flow.Key // flows in order of their first packet
	n        uint32     // flows so far (the flow ID's counter)
}

// trafficFlow is one flow's record and its open block.
type trafficFlow struct {
	rec *flow.Record
	b   block.Builder
	seq uint32
}

// readCapture adds every IPv4 packet of a shared capture.
func (tb *trafficBuilder) readCapture(name string) {
	f, err := os.Open(testenv.Pcap(tb.t, name))
	if err != nil {
		tb.t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return
		}
		tu, ok := ipv4Tuple(gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy))
		if !ok {
			continue
		}
		x := tb.flowOf(tu, filepath.Base(name), uint16(r.LinkType()), ci.Timestamp)
		countPacket(x.rec, tu, ci, len(data))
		x.b.Append(ci.Timestamp.UnixNano(), ci.Length, data)
		tb.tr.Packets++
		if x.b.Packets() >= tb.perBlock {
			tb.emit(x)
		}
	}
}

// ipv4Tuple is an IPv4 packet's 5-tuple (ports for TCP and UDP).
func ipv4Tuple(p gopacket.Packet) (flow.Tuple, bool) {
	ip, ok := p.NetworkLayer().(*layers.IPv4)
	if !ok {
		return flow.Tuple{}, false
	}
	tu := flow.Tuple{Family: flow.FamilyIPv4, Proto: uint8(ip.Protocol),
		Src: flow.AddrFrom4([4]byte(ip.SrcIP.To4())), Dst: flow.AddrFrom4([4]byte(ip.DstIP.To4()))}
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	case *layers.UDP:
		tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
	}
	return tu, true
}

// flowOf returns the tuple's flow, created at its first packet.
func (tb *trafficBuilder) flowOf(tu flow.Tuple, iface string, linkType uint16, ts time.Time) *trafficFlow {
	key, _ := tu.Key()
	if x := tb.flows[key]; x != nil {
		return x
	}
	tb.n++
	id := flow.NewID(ts, flow.SensorHash(tb.sensorID), tb.n)
	x := &trafficFlow{rec: &flow.Record{ID: id, SensorID: tb.sensorID, Interface: iface,
		CommunityID: flow.CommunityID(0, tu), Tuple: tu, Start: ts.UTC(), Reason: flow.ReasonEndOfCapture}}
	x.b.Reset(block.Meta{Key: key, FlowID: id, CommunityID: x.rec.CommunityID, SensorID: tb.sensorID,
		Interface: x.rec.Interface, LinkType: linkType})
	tb.flows[key] = x
	tb.order = append(tb.order, key)
	return x
}

// countPacket adds a packet to its direction's counters in rec.
func countPacket(rec *flow.Record, tu flow.Tuple, ci gopacket.CaptureInfo, stored int) {
	d := &rec.Source
	if tu.Src != rec.Tuple.Src || tu.SrcPort != rec.Tuple.SrcPort {
		d = &rec.Destination
	}
	d.Packets++
	d.Bytes += uint64(ci.Length)
	d.StoredPackets++
	d.StoredBytes += uint64(stored)
	if d.First.IsZero() {
		d.First = ci.Timestamp.UTC()
	}
	d.Last = ci.Timestamp.UTC()
	rec.End = ci.Timestamp.UTC()
}

// emit encodes the flow's open block, if it holds packets, and opens the
// next one.
func (tb *trafficBuilder) emit(f *trafficFlow) {
	if f.b.Packets() == 0 {
		return
	}
	enc2, _, err := f.b.Encode(tb.enc, nil)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.tr.Blocks = append(tb.tr.Blocks, enc2)
	f.seq++
	m := f.b.Meta()
	m.Seq = f.seq
	f.b.Reset(m)
}
