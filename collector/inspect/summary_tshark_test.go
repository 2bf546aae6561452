package inspect

import (
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// TestSummaryMatchesTshark: the summary of every packet whose Protocol
// column tshark sets to TCP (no payload it decodes further), DNS, ICMP or
// HTTP request is "PROTOCOL INFO" as tshark prints those columns, for
// captures holding those protocols.
func TestSummaryMatchesTshark(t *testing.T) {
	for _, rel := range []string{"zeek/get.pcap", "arkime/dns-udp.pcap", "zeek/icmp-ping.pcap", "zeek/wikipedia.pcap"} {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			want := tsharkoracle.Lines(t, "-r", path, "-T", "fields", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
			got := summaries(t, path)
			if len(got) != len(want) {
				t.Fatalf("%d packets, tshark %d", len(got), len(want))
			}
			compared := 0
			for i, w := range want {
				proto, info, _ := strings.Cut(w, "\t")
				info = strings.TrimSpace(strings.TrimSuffix(info, " [TCP segment of a reassembled PDU]"))
				if i := strings.Index(info, " (request in "); i > 0 {
					info = info[:i] // tshark's cross-reference to an earlier packet
				}
				if i := strings.Index(info, " (no response found!)"); i > 0 {
					info = info[:i]
				}
				if proto != "TCP" && proto != "DNS" && proto != "ICMP" && !(proto == "HTTP" && strings.Contains(info, " HTTP/1.")) {
					continue
				}
				if strings.HasPrefix(info, "[TCP") || strings.Contains(info, "Retransmission") {
					continue // tshark's own analysis notes
				}
				if proto == "TCP" && !strings.Contains(info, " → ") {
					continue // an HTTP header in a segment tshark reassembles: summarized as HTTP
				}
				if g := strings.Join(strings.Fields(got[i]), " "); g != proto+" "+strings.Join(strings.Fields(info), " ") {
					t.Errorf("packet %d: summary %q, tshark %q", i+1, got[i], proto+" "+info)
				}
				compared++
			}
			if compared == 0 {
				t.Fatal("nothing compared")
			}
			t.Logf("%d summaries equal tshark's", compared)
		})
	}
}

// summaries returns the summary of every packet of a capture.
func summaries(t *testing.T, path string) []string {
	t.Helper()
	link, pkts := testenv.ReadPcap(t, path)
	s := NewSummarizer()
	out := make([]string, 0, len(pkts))
	for _, p := range pkts {
		out = append(out, s.Summary(link, p.Data))
	}
	return out
}
