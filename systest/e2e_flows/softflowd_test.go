package e2eflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// captures softflowd reads: real traffic with TCP, UDP, ICMP, IPv6.
var captures = []string{
	"zeek/wikipedia.pcap",
	"zeek/ssh.pcap",
	"zeek/5-pings.pcap",
	"community-id-spec/combined.pcap.gz",
	"suricata-verify/community-id-ipv6/input.pcap",
}

// TestSoftflowdMatchesNfdump: softflowd exports each capture as NetFlow
// v5, v9 and IPFIX to tapir's flow input and to nfcapd in the same run;
// tapir's records equal nfdump's, flow for flow in 5-tuple, packets and
// bytes, and the exporter's counters show no decode error, no template
// miss and no sequence gap.
func TestSoftflowdMatchesNfdump(t *testing.T) {
	for _, rel := range captures {
		pcap := testenv.Plain(t, testenv.Pcap(t, rel))
		for _, v := range []int{5, 9, 10} {
			t.Run(fmt.Sprintf("%s/v%d", rel, v), func(t *testing.T) {
				col := startInput(t, "-")
				port, stop := nfcapd(t)
				softflowd(t, pcap, v, col.port, port)
				time.Sleep(300 * time.Millisecond) // let the datagrams land
				got := col.records()
				dir, nfSeqErrs := stop()
				want := nfdump(t, dir)
				diff(t, "flows", keysOfRecords(got, v != 9), keysOfRows(want))
				st := col.in.Stats()["127.0.0.1"]
				if st.Datagrams == 0 && len(want) > 0 || st.DecodeErrors != 0 || st.TemplateMisses != 0 {
					t.Errorf("exporter stats %+v", st)
				}
				// Nothing is lost on loopback: NetFlow v5 and v9
				// sequence numbers have no gap (nfcapd agrees). softflowd's
				// IPFIX sequence numbers skip now and then (nfcapd counts
				// "sequence errors" there too, though not the same
				// number): logged, not asserted.
				if v != 10 && (st.SequenceGaps != 0 || nfSeqErrs != 0) {
					t.Errorf("tapir counts %d missing, nfcapd %d sequence errors", st.SequenceGaps, nfSeqErrs)
				}
				for i := range got {
					r := &got[i]
					if r.CommunityID != flow.CommunityID(0, r.Tuple) || r.Exported == nil || r.Exported.Exporter != "127.0.0.1" || r.SensorID != "exporter:127.0.0.1" {
						t.Fatalf("record identity: %+v", r)
					}
				}
				t.Logf("%d flows match nfdump; %+v", len(got), st)
			})
		}
	}
}
