package tapirv1_test

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/engine/enginetest"
)

// TestAppMetaTimelineRoundTrip sends the records the sensor makes of real
// captures (DNS, TLS, HTTP, SSH metadata; timelines of the SSH sessions)
// through the wire form and expects them back unchanged, timelines
// decoding to the same points.
func TestAppMetaTimelineRoundTrip(t *testing.T) {
	var withApp, withTimeline int
	for _, rel := range []string{"arkime/curl-enabled-tls13.pcap", "zeek/wikipedia.pcap", "zeek/ssh.pcap", "arkime/dns-tcp.pcap"} {
		recs, err := enginetest.Records(testenv.Pcap(t, rel), enginetest.LongFlowConfig())
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for i := range recs {
			r := &recs[i]
			if r.App == nil && r.Timeline == nil {
				continue
			}
			if r.App != nil {
				withApp++
			}
			wire, err := proto.Marshal(tapirv1.FromRecord(r, nil))
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
			if !reflect.DeepEqual(got.App, r.App) {
				t.Errorf("%s: app %+v, sent %+v", rel, got.App, r.App)
			}
			if r.Timeline != nil {
				withTimeline++
				a, err1 := r.Timeline.Decode()
				b, err2 := got.Timeline.Decode()
				if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) || len(a) == 0 || got.Timeline.Interval != r.Timeline.Interval {
					t.Errorf("%s: timeline %v %v: %d vs %d points", rel, err1, err2, len(a), len(b))
				}
			}
		}
	}
	if withApp == 0 || withTimeline == 0 {
		t.Fatalf("%d records with metadata, %d with a timeline", withApp, withTimeline)
	}
}

func TestToRecordRejectsAppMeta(t *testing.T) {
	for name, mut := range map[string]func(*tapirv1.FlowRecord){
		"dns type": func(p *tapirv1.FlowRecord) { p.App = &tapirv1.AppMeta{Dns: &tapirv1.DNSMeta{QueryType: 70000}} },
		"dns answer": func(p *tapirv1.FlowRecord) {
			p.App = &tapirv1.AppMeta{Dns: &tapirv1.DNSMeta{Answers: []*tapirv1.DNSAnswer{nil}}}
		},
		"tls cipher":  func(p *tapirv1.FlowRecord) { p.App = &tapirv1.AppMeta{Tls: &tapirv1.TLSMeta{Cipher: 1 << 16}} },
		"http status": func(p *tapirv1.FlowRecord) { p.App = &tapirv1.AppMeta{Http: &tapirv1.HTTPMeta{StatusCode: 1000}} },
		"interval":    func(p *tapirv1.FlowRecord) { p.Timeline = &tapirv1.Timeline{IntervalNano: 0} },
	} {
		r := flow.Record{ID: flow.NewID(time.Unix(1, 0), 1, 1), Tuple: flow.Tuple{Family: flow.FamilyIPv4, Proto: 6}}
		p := tapirv1.FromRecord(&r, nil)
		mut(p)
		if err := tapirv1.ToRecord(p, &r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
