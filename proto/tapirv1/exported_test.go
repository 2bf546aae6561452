package tapirv1_test

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

func TestExportedRoundTrip(t *testing.T) {
	start := time.Unix(1700000000, 0).UTC()
	src, f := flow.AddrFromNetip(netip.MustParseAddr("192.0.2.1"))
	r := flow.Record{ID: flow.NewID(start, 1, 2), SensorID: "exporter:127.0.0.1", CommunityID: "1:x",
		Tuple:  flow.Tuple{Src: src, Dst: src, SrcPort: 1, DstPort: 2, Proto: 6, Family: f},
		Source: flow.DirStats{Packets: 10, Bytes: 2000}, Start: start, End: start, Reason: flow.ReasonIdleTimeout,
		Exported: &flow.Exported{Exporter: "127.0.0.1", Protocol: "ipfix", ObservationDomain: 7, InputInterface: 3,
			OutputInterface: 4, SamplingRate: 10, RawSourcePackets: 1, RawSourceBytes: 200, Biflow: false}}
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
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
}
