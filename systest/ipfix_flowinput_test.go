// Package systest holds system tests that cross the sensor/collector
// boundary: what one side produces, read back by the other. Neither side
// may import the other, so these tests live here, outside both.
package systest

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/flowinput"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/ipfix"
	"github.com/tapir-sensor/tapir/sensor/ipfix/ipfixtest"
)

// TestFlowInputDecodes: the collector's own flow input decodes what the
// exporter sends (over a real UDP socket) into records with the sensor's
// Community IDs (recomputed from the exported 5-tuple, ICMP type and code
// included), both directions' counters, timestamps and end reasons, with
// no decode error, template miss or sequence gap.
func TestFlowInputDecodes(t *testing.T) {
	for _, rel := range ipfixtest.Captures {
		t.Run(rel, func(t *testing.T) {
			recs := ipfixtest.Finals(ipfixtest.SensorRecords(t, rel))
			u := ipfixtest.ListenUDP(t)
			cfg := ipfix.DefaultConfig()
			cfg.Collector = u.Addr()
			x, err := ipfix.New(cfg, ipfix.Dependencies{})
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Start(); err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if err := x.AddRecord(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.Stop(); err != nil {
				t.Fatal(err)
			}
			dgs := u.Datagrams(x.Stats().Messages)

			icfg := flowinput.DefaultConfig()
			icfg.Enabled = true
			in, err := flowinput.New(icfg, flowinput.Dependencies{Deliver: func(context.Context, flowinput.Batch) error { return nil }})
			if err != nil {
				t.Fatal(err)
			}
			from := netip.MustParseAddr("127.0.0.1")
			var got []flow.Record
			for _, dg := range dgs {
				if got, err = in.Decoder().Decode(from, flowinput.ProtoNetFlow, dg, time.Now(), got); err != nil {
					t.Fatalf("decode: %v", err)
				}
			}
			st := in.Decoder().Stats()["127.0.0.1"]
			if st.DecodeErrors+st.TemplateMisses+st.SequenceGaps != 0 || st.Datagrams != uint64(len(dgs)) {
				t.Errorf("flow input stats %+v for %d datagrams", st, len(dgs))
			}
			render := func(r *flow.Record) string {
				return fmt.Sprintf("%s %d/%d %d/%d %d-%d reason %d", r.CommunityID, r.Source.Packets, r.Source.Bytes,
					r.Destination.Packets, r.Destination.Bytes, r.Start.UnixMilli(), r.End.UnixMilli(), ipfix.EndReason(r.Reason))
			}
			var a, b []string
			for i := range got {
				if got[i].Exported == nil || !got[i].Exported.Biflow || got[i].Exported.Protocol != "ipfix" {
					t.Fatalf("decoded record not an IPFIX biflow: %+v", got[i].Exported)
				}
				a = append(a, render(&got[i]))
			}
			for i := range recs {
				b = append(b, render(&recs[i]))
			}
			sort.Strings(a)
			sort.Strings(b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("flow input decoded\n%v\nsensor sent\n%v", a, b)
			}
			t.Logf("%d records round-trip; %+v", len(got), st)
		})
	}
}
