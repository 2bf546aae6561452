package storagetest

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
)

// Packet is one captured packet with its directional tuple.
type Packet struct {
	Time  time.Time
	Tuple flow.Tuple
	Data  []byte
	Wire  int
}

// Flow is the packets of one canonical flow key of a capture, in capture
// order.
type Flow struct {
	Key     flow.Key
	Packets []Packet
}

// LoadFlows reads a pcap (path relative to the shared captures, testenv.Pcaps) and groups its IP
// packets by canonical flow key, in order of each flow's first packet.
func LoadFlows(t testing.TB, name string) []Flow {
	t.Helper()
	f, err := os.Open(testenv.Pcap(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var flows []Flow
	index := map[flow.Key]int{}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tup, ok := tupleOf(gopacket.NewPacket(data, r.LinkType(), gopacket.Default))
		if !ok {
			continue
		}
		k, _ := tup.Key()
		i, ok := index[k]
		if !ok {
			i = len(flows)
			index[k] = i
			flows = append(flows, Flow{Key: k})
		}
		flows[i].Packets = append(flows[i].Packets, Packet{Time: ci.Timestamp.UTC(), Tuple: tup, Data: data, Wire: ci.Length})
	}
	if len(flows) == 0 {
		t.Fatalf("%s: no IP flows", name)
	}
	return flows
}

func tupleOf(p gopacket.Packet) (flow.Tuple, bool) {
	var t flow.Tuple
	vlans := 0
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.Dot1Q:
			switch vlans {
			case 0:
				t.VLAN = l.VLANIdentifier
			case 1:
				t.InnerVLAN = l.VLANIdentifier
			}
			vlans++
		case *layers.IPv4:
			if t.Family != 0 {
				return t, true // tunnel: keep the outer tuple
			}
			t.Family, t.Proto = flow.FamilyIPv4, uint8(l.Protocol)
			t.Src = flow.AddrFrom4([4]byte(l.SrcIP.To4()))
			t.Dst = flow.AddrFrom4([4]byte(l.DstIP.To4()))
		case *layers.IPv6:
			if t.Family != 0 {
				return t, true
			}
			t.Family, t.Proto = flow.FamilyIPv6, uint8(l.NextHeader)
			t.Src, t.Dst = flow.Addr(l.SrcIP.To16()), flow.Addr(l.DstIP.To16())
		case *layers.TCP:
			t.SrcPort, t.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			return t, t.Family != 0
		case *layers.UDP:
			t.SrcPort, t.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			return t, t.Family != 0
		case *layers.ICMPv4:
			t.SrcPort, t.DstPort = uint16(l.TypeCode.Type()), uint16(l.TypeCode.Code())
			return t, t.Family != 0
		case *layers.ICMPv6:
			t.SrcPort, t.DstPort = uint16(l.TypeCode.Type()), uint16(l.TypeCode.Code())
			return t, t.Family != 0
		}
	}
	return t, t.Family != 0
}

// Instance is one instance of a capture flow as a sensor reports it: the
// flow shifted in time, with its own flow ID, cut into blocks.
type Instance struct {
	Flow     *Flow
	SensorID string
	ID       flow.ID
	Shift    time.Duration
	Blocks   []storage.Block
	Record   flow.Record
}

// NewInstance cuts f into blocks of at most perBlock packets as sensor
// would, with every timestamp moved by shift. counter makes the flow ID.
// Encoded holds the packets' bytes in a simple framing: the store treats
// it as opaque.
func NewInstance(f *Flow, sensor string, counter uint32, shift time.Duration, perBlock int) *Instance {
	first := f.Packets[0]
	in := &Instance{Flow: f, SensorID: sensor, Shift: shift,
		ID: flow.NewID(first.Time.Add(shift), flow.SensorHash(sensor), counter)}
	cid := flow.CommunityID(0, first.Tuple)
	for i, seq := 0, uint32(0); i < len(f.Packets); i, seq = i+perBlock, seq+1 {
		pk := f.Packets[i:min(i+perBlock, len(f.Packets))]
		m := block.Meta{Key: f.Key, FlowID: in.ID, CommunityID: cid, SensorID: sensor, Interface: "pcap",
			LinkType: 1, Seq: seq, First: pk[0].Time.Add(shift).UnixNano(), Last: pk[len(pk)-1].Time.Add(shift).UnixNano()}
		var enc []byte
		enc = append(enc, in.ID[:]...)
		enc = binary.BigEndian.AppendUint32(enc, seq)
		for _, p := range pk {
			m.Packets++
			m.Bytes += uint64(len(p.Data))
			enc = binary.BigEndian.AppendUint64(enc, uint64(p.Time.Add(shift).UnixNano()))
			enc = binary.BigEndian.AppendUint32(enc, uint32(len(p.Data)))
			enc = append(enc, p.Data...)
		}
		in.Blocks = append(in.Blocks, storage.Block{Meta: m, Encoded: enc})
	}
	r := flow.Record{ID: in.ID, SensorID: sensor, Interface: "pcap", CommunityID: cid, Tuple: first.Tuple,
		Start: first.Time.Add(shift), End: f.Packets[len(f.Packets)-1].Time.Add(shift), Reason: flow.ReasonEndOfCapture}
	for _, p := range f.Packets {
		d := &r.Destination
		if p.Tuple == first.Tuple {
			d = &r.Source
		}
		d.Packets++
		d.Bytes += uint64(p.Wire)
		d.StoredPackets++
		d.StoredBytes += uint64(len(p.Data))
		if d.First.IsZero() {
			d.First = p.Time.Add(shift)
		}
		d.Last = p.Time.Add(shift)
	}
	in.Record = r
	return in
}

// sortBlocks orders blocks as ScanBlocks must return them: by first time.
func sortBlocks(bs []storage.Block) {
	slices.SortStableFunc(bs, func(a, b storage.Block) int {
		if a.Meta.First != b.Meta.First {
			return cmpInt(a.Meta.First, b.Meta.First)
		}
		return cmpInt(int64(a.Meta.Seq), int64(b.Meta.Seq))
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
