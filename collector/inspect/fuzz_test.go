package inspect

import "testing"

// FuzzSummary feeds arbitrary frames to every decoder of the package:
// none may panic, and the summary is one line. The committed seeds
// (testdata/fuzz/FuzzSummary) are frames of the shared captures: HTTP,
// DNS, ICMP, a TLS Client Hello, ARP, IPv6, ICMPv6, Linux SLL2, VXLAN
// and NFLOG.
func FuzzSummary(f *testing.F) {
	f.Add(uint16(1), []byte{})
	f.Fuzz(func(t *testing.T, link uint16, frame []byte) {
		s := NewSummarizer()
		line := s.Summary(link, frame)
		if line == "" {
			t.Fatal("empty summary")
		}
		for _, c := range line {
			if c == '\n' || c == '\r' {
				t.Fatalf("summary %q spans lines", line)
			}
		}
		_ = s.Summary(link, frame) // a second packet of the same direction
		if len(Layers(link, frame)) == 0 {
			t.Fatal("no layers")
		}
		var fl Follower
		if seg, ok := ParseSegment(link, frame, len(frame)); ok {
			fl.Add(seg)
			fl.Add(seg)
			_ = fl.Stream().ASCII()
		}
	})
}
