package query

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// TestParseTcpdump: tcpdump's forms parse to terms of tapir's language:
// protocol qualifiers ("tcp port 80" means tcp and port 80), direction
// qualifiers on host, net, port and portrange, a type left out (a host,
// or a net with /), and bare IDs that reuse the last qualifiers.
func TestParseTcpdump(t *testing.T) {
	cases := []struct{ in, want string }{
		{"tcp port 80", "(proto 6 and port 80)"},
		{"udp and port 53", "(proto 17 and port 53)"},
		{"udp port 53", "(proto 17 and port 53)"},
		{"src host 10.0.0.1", "src host 10.0.0.1"},
		{"dst port 443", "dst port 443"},
		{"src net 10.0.0.0/8", "src net 10.0.0.0/8"},
		{"dst net 10.0.0.0 mask 255.0.0.0", "dst net 10.0.0.0/8"},
		{"host 10.0.0.1 and not port 22", "(host 10.0.0.1 and not port 22)"},
		{"src or dst host 10.0.0.1", "host 10.0.0.1"},
		{"src and dst net 10.0.0.0/8", "src and dst net 10.0.0.0/8"},
		{"src && dst port 1", "src and dst port 1"},
		{"udp dst port 53", "(proto 17 and dst port 53)"},
		{"tcp src or dst port 80", "(proto 6 and port 80)"},
		{"ip host 10.0.0.1", "(ip and host 10.0.0.1)"},
		{"ip6 net 2001:db8::/32", "(ip6 and net 2001:db8::/32)"},
		{"ip proto 6", "(ip and proto 6)"},
		{"ip6 proto udp", "(ip6 and proto 17)"},
		{"ip or ip6", "(ip or ip6)"},
		{"portrange 1-1024", "portrange 1-1024"},
		{"tcp dst portrange 8000-8080", "(proto 6 and dst portrange 8000-8080)"},
		{"src 10.0.0.1", "src host 10.0.0.1"},
		{"dst 10.0.0.0/8", "dst net 10.0.0.0/8"},
		{"10.0.0.1", "host 10.0.0.1"},
		{"10.0.0.0/8", "net 10.0.0.0/8"},
		{"2001:db8::1", "host 2001:db8::1"},
		// Bare IDs reuse the last qualifiers, protocol included.
		{"port 80 or 443", "(port 80 or port 443)"},
		{"tcp port 80 or 443", "((proto 6 and port 80) or (proto 6 and port 443))"},
		{"host 10.0.0.1 and not 10.0.0.2", "(host 10.0.0.1 and not host 10.0.0.2)"},
		{"dst port 53 and (1 or 2)", "(dst port 53 and (dst port 1 or dst port 2))"},
		{"src host 10.0.0.1 and vlan 10 or 10.0.0.2", "((src host 10.0.0.1 and vlan 10) or src host 10.0.0.2)"},
		{"TCP SRC PORT 80", "(proto 6 and src port 80)"},
		// The language's own forms are unchanged.
		{"tcp and port 80", "(proto 6 and port 80)"},
		{"tcp", "proto 6"},
		{"icmp", "icmp"},
	}
	for _, c := range cases {
		q, err := Parse(c.in, testNow, DefaultConfig())
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
		q2, err := Parse(q.String(), testNow, DefaultConfig())
		if err != nil || q2.String() != q.String() {
			t.Errorf("reparse of %q: %v, %v", q.String(), q2, err)
		}
	}
}

func TestParseTcpdumpErrors(t *testing.T) {
	cases := []struct {
		in       string
		pos      int
		expected string
	}{
		{"host 1.2.3.4 port 53", 14, `"and", "or"`}, // juxtaposition only after a protocol
		{"tcp tcp", 5, `"and", "or"`},
		{"src", 4, `IP address after "src"`},
		{"src port", 9, `port number (0-65535) after "src port"`},
		{"dst port 70000", 10, `port number`},
		{"portrange 5-1", 11, "port range"},
		{"portrange 5", 11, "port range"},
		{"port 80 or 10.0.0.1", 12, `port number (0-65535) after "port"`},
		{"53", 1, "IP address"},
		{"src net 10.0.0.0/40", 9, "prefix"},
		{"vlan 1 or 2", 11, "a bare ID is a host"},
		{"vlan 1 or bogus", 11, "a term"},
	}
	for _, c := range cases {
		_, err := Parse(c.in, testNow, DefaultConfig())
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error %v, want a SyntaxError", c.in, err)
			continue
		}
		if se.Pos+1 != c.pos || !strings.Contains(se.Expected, c.expected) {
			t.Errorf("Parse(%q): %v; want position %d expecting %q", c.in, err, c.pos, c.expected)
		}
	}
}

// TestMatchTcpdump: src is the flow's initiator, dst its responder.
func TestMatchTcpdump(t *testing.T) {
	t0 := testNow.Add(-30 * time.Minute)
	dns := rec("10.0.0.1", "8.8.8.8", 54321, 53, flow.ProtoUDP, 0, 0, t0, t0)
	web := rec("10.0.0.1", "10.0.0.2", 40000, 443, flow.ProtoTCP, 0, 0, t0, t0)
	ssh := rec("10.0.0.2", "10.0.0.1", 50000, 22, flow.ProtoTCP, 0, 0, t0, t0)
	web6 := rec("2001:db8::1", "2001:db8:1::2", 40000, 80, flow.ProtoTCP, 0, 0, t0, t0)
	all := []*flow.Record{dns, web, ssh, web6}
	cases := []struct {
		q    string
		want []*flow.Record
	}{
		{"tcp port 80", []*flow.Record{web6}},
		{"udp and port 53", []*flow.Record{dns}},
		{"udp port 54321", []*flow.Record{dns}},
		{"src host 10.0.0.1", []*flow.Record{dns, web}},
		{"dst host 10.0.0.1", []*flow.Record{ssh}},
		{"host 10.0.0.1", []*flow.Record{dns, web, ssh}},
		{"src and dst net 10.0.0.0/8", []*flow.Record{web, ssh}},
		{"src net 10.0.0.0/8", []*flow.Record{dns, web, ssh}},
		{"dst net 10.0.0.0/8", []*flow.Record{web, ssh}},
		{"dst port 443", []*flow.Record{web}},
		{"src port 443", nil},
		{"dst port 53 or 22", []*flow.Record{dns, ssh}},
		{"host 10.0.0.1 and not port 22", []*flow.Record{dns, web}},
		{"ip", []*flow.Record{dns, web, ssh}},
		{"ip6", []*flow.Record{web6}},
		{"ip6 and tcp dst portrange 1-1023", []*flow.Record{web6}},
		{"tcp dst portrange 1-1023", []*flow.Record{web, ssh, web6}},
		{"src portrange 40000-50000", []*flow.Record{web, ssh, web6}},
		{"tcp src or dst port 22", []*flow.Record{ssh}},
	}
	for _, c := range cases {
		q, err := Parse(c.q, testNow, DefaultConfig())
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.q, err)
		}
		for _, r := range all {
			want := false
			for _, w := range c.want {
				want = want || w == r
			}
			if got := q.Match(r); got != want {
				t.Errorf("%q on %v: %v, want %v", c.q, r.Tuple, got, want)
			}
		}
	}
}
