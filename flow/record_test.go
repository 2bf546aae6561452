package flow_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func sampleRecord() *flow.Record {
	start := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	tp := flow.Tuple{Src: flow.AddrFrom4([4]byte{128, 232, 110, 120}), Dst: flow.AddrFrom4([4]byte{66, 35, 250, 204}),
		SrcPort: 34855, DstPort: 80, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4, VLAN: 10}
	return &flow.Record{
		ID: flow.NewID(start, flow.SensorHash("s1"), 7), SensorID: "s1", Interface: "eth0",
		CommunityID: flow.CommunityID(0, tp), Tuple: tp,
		Source:      flow.DirStats{Packets: 6, Bytes: 500, First: start, Last: start.Add(time.Second), TCPFlags: flow.TCPFlagSYN | flow.TCPFlagACK},
		Destination: flow.DirStats{Packets: 6, Bytes: 614, First: start, Last: start.Add(time.Second)},
		Start:       start, End: start.Add(time.Second), Reason: flow.ReasonFIN,
	}
}

func TestIDRoundTrip(t *testing.T) {
	r := sampleRecord()
	s := r.ID.String()
	got, err := flow.ParseID(s)
	if err != nil || got != r.ID {
		t.Fatalf("ParseID(%s) = %v, %v", s, got, err)
	}
	if !got.Start().Equal(r.Start) {
		t.Fatalf("start %v != %v", got.Start(), r.Start)
	}
	for _, bad := range []string{"", "xyz", s[:31], s + "0", "zz" + s[2:]} {
		if _, err := flow.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestECSFields(t *testing.T) {
	b, err := json.Marshal(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"network.community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
		"network.transport":    "tcp", "network.iana_number": "6",
		"source.ip": "128.232.110.120", "source.port": 34855.0, "source.packets": 6.0, "source.bytes": 500.0,
		"destination.ip": "66.35.250.204", "destination.port": 80.0, "destination.bytes": 614.0,
		"event.start": "2024-05-01T10:00:00.123456789Z", "event.end": "2024-05-01T10:00:01.123456789Z",
		"event.reason": "fin", "tapir.sensor_id": "s1", "tapir.vlan": 10.0,
		"ecs.version": "9.4.0",
	}
	for path, want := range checks {
		var obj, field string
		for i := range path {
			if path[i] == '.' {
				obj, field = path[:i], path[i+1:]
				break
			}
		}
		if got := m[obj].(map[string]any)[field]; got != want {
			t.Errorf("%s = %v (%T), want %v", path, got, got, want)
		}
	}
	if flags := m["tapir"].(map[string]any)["source"].(map[string]any)["tcp_flags"]; flags != "SA" {
		t.Errorf("tcp flags %v", flags)
	}
}
