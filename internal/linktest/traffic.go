package linktest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
	tr := &Traffic{}
	type fl struct {
		rec *flow.Record
		b   block.Builder
		seq uint32
	}
	flows := map[flow.Key]*fl{}
	var order []flow.Key
	var n uint32
	emit := func(f *fl) {
		if f.b.Packets() == 0 {
			return
		}
		enc2, _, err := f.b.Encode(enc, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr.Blocks = append(tr.Blocks, enc2)
		f.seq++
		m := f.b.Meta()
		m.Seq = f.seq
		f.b.Reset(m)
	}
	for _, name := range []string{"community-id-spec/tcp.pcap", "community-id-spec/udp.pcap"} {
		f, err := os.Open(testenv.Pcap(t, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				break
			}
			p := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
			ip, ok := p.NetworkLayer().(*layers.IPv4)
			if !ok {
				continue
			}
			tu := flow.Tuple{Family: flow.FamilyIPv4, Proto: uint8(ip.Protocol),
				Src: flow.AddrFrom4([4]byte(ip.SrcIP.To4())), Dst: flow.AddrFrom4([4]byte(ip.DstIP.To4()))}
			switch l := p.TransportLayer().(type) {
			case *layers.TCP:
				tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			case *layers.UDP:
				tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			}
			key, _ := tu.Key()
			x := flows[key]
			if x == nil {
				n++
				id := flow.NewID(ci.Timestamp, flow.SensorHash(sensorID), n)
				x = &fl{rec: &flow.Record{ID: id, SensorID: sensorID, Interface: filepath.Base(name),
					CommunityID: flow.CommunityID(0, tu), Tuple: tu, Start: ci.Timestamp.UTC(), Reason: flow.ReasonEndOfCapture}}
				x.b.Reset(block.Meta{Key: key, FlowID: id, CommunityID: x.rec.CommunityID, SensorID: sensorID,
					Interface: x.rec.Interface, LinkType: uint16(r.LinkType())})
				flows[key] = x
				order = append(order, key)
			}
			d := &x.rec.Source
			if tu.Src != x.rec.Tuple.Src || tu.SrcPort != x.rec.Tuple.SrcPort {
				d = &x.rec.Destination
			}
			d.Packets++
			d.Bytes += uint64(ci.Length)
			d.StoredPackets++
			d.StoredBytes += uint64(len(data))
			if d.First.IsZero() {
				d.First = ci.Timestamp.UTC()
			}
			d.Last = ci.Timestamp.UTC()
			x.rec.End = ci.Timestamp.UTC()
			x.b.Append(ci.Timestamp.UnixNano(), ci.Length, data)
			tr.Packets++
			if x.b.Packets() >= perBlock {
				emit(x)
			}
		}
		f.Close()
	}
	for _, k := range order {
		emit(flows[k])
		tr.Records = append(tr.Records, *flows[k].rec)
	}
	if len(tr.Records) == 0 || len(tr.Blocks) == 0 {
		t.Fatal(fmt.Errorf("no traffic derived from the captures"))
	}
	return tr
}
