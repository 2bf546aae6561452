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
