package inspect

import (
	"testing"

	"github.com/tapir-sensor/tapir/collector/inspect/inspecttest"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// conversation is the packets of one TCP or UDP conversation of a
// capture, in capture order.
type conversation struct {
	first Segment
	f     Follower
}

// followCapture feeds every TCP and UDP packet of a capture to one
// Follower per conversation (canonical 5-tuple), in capture order.
func followCapture(t *testing.T, path string) []*conversation {
	t.Helper()
	link, pkts := testenv.ReadPcap(t, path)
	byKey := map[string]*conversation{}
	var out []*conversation
	for _, p := range pkts {
		seg, ok := ParseSegment(link, p.Data, p.Info.Length)
		if !ok {
			continue
		}
		k := convKey(seg)
		c := byKey[k]
		if c == nil {
			c = &conversation{first: seg}
			byKey[k] = c
			out = append(out, c)
		}
		c.f.Add(seg)
	}
	return out
}

func convKey(s Segment) string {
	a, b := s.Src.String(), s.Dst.String()
	if a > b {
		a, b = b, a
	}
	return string(rune(s.Proto)) + a + "|" + b
}

// maxFollowed bounds the conversations compared per capture (one
// tshark run each); collector/api's TestInspectStreamMatchesTshark
// compares every flow of its captures.
const maxFollowed = 10

// TestFollowMatchesTshark: for the TCP conversations (and the UDP ones)
// of captures with payload, the ASCII body equals tshark's
// `-z follow,tcp,ascii,A,B` on the same capture: retransmissions,
// overlaps, out-of-order segments, acknowledged gaps, missing SYNs.
func TestFollowMatchesTshark(t *testing.T) {
	for _, rel := range []string{"zeek/get.pcap", "zeek/http-vlan-0.pcap",
		"zeek/reassembly.pcap", "zeek/missing-syn.pcap", "arkime/dns-tcp.pcap", "zeek/tls-conn-with-extensions.pcap",
		"arkime/curl-enabled-tls13.pcap", "tcpdump/dns_tcp.pcap", "zeek/ssh.pcap", "arkime/dns-udp.pcap"} {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Plain(t, testenv.Pcap(t, rel))
			convs := followCapture(t, path)
			n := 0
			for _, c := range convs[:min(len(convs), maxFollowed)] {
				proto := flow.ProtoName(c.first.Proto)
				got := c.f.Stream().ASCII()
				want := inspecttest.Follow(t, path, proto, Node(c.first.Src), Node(c.first.Dst))
				if got != want {
					t.Errorf("%s %s -> %s: follow differs from tshark\ngot:\n%s\nwant:\n%s", proto, c.first.Src, c.first.Dst, clip(got), clip(want))
					continue
				}
				n++
			}
			if n == 0 {
				t.Fatal("no conversation compared")
			}
			t.Logf("%d conversations equal tshark's", n)
		})
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "..."
	}
	return s
}
