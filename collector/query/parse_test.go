package query

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.DefaultWindow = 0
	if bad.Validate() == nil {
		t.Fatal("zero default window validated")
	}
	bad = DefaultConfig()
	bad.MaxWindow = time.Minute
	if bad.Validate() == nil {
		t.Fatal("default window above max window validated")
	}
}

func TestParseCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"host 1.2.3.4", "host 1.2.3.4"},
		{"HOST 2001:DB8::1", "host 2001:db8::1"},
		{"host ::ffff:10.1.2.3", "host 10.1.2.3"},
		{"net 10.0.0.0/8", "net 10.0.0.0/8"},
		{"net 10.1.2.3/8", "net 10.0.0.0/8"},
		{"net 10.0.0.0 mask 255.0.0.0", "net 10.0.0.0/8"},
		{"net 2001:db8:: mask ffff:ffff::", "net 2001:db8::/32"},
		{"net 2001:db8::/32", "net 2001:db8::/32"},
		{"port 53", "port 53"},
		{"proto tcp", "proto 6"},
		{"proto 17", "proto 17"},
		{"udp", "proto 17"},
		{"icmp", "icmp"},
		{"proto icmp6", "proto 58"},
		{"vlan 10", "vlan 10"},
		{"host 1.2.3.4 and port 53", "(host 1.2.3.4 and port 53)"},
		{"host 1.2.3.4 && port 53", "(host 1.2.3.4 and port 53)"},
		// and binds tighter than or
		{"tcp or udp and port 53", "(proto 6 or (proto 17 and port 53))"},
		{"tcp and udp or port 53", "((proto 6 and proto 17) or port 53)"},
		{"(tcp or udp) and port 53", "((proto 6 or proto 17) and port 53)"},
		{"not tcp and port 1", "(not proto 6 and port 1)"},
		{"!tcp || !(port 1)", "(not proto 6 or not port 1)"},
		{"not not vlan 1", "not not vlan 1"},
		{"a and b", ""}, // error, see below
		{"after 2024-05-01T10:00:00Z", "after 2024-05-01T10:00:00Z"},
		{"after 2024-05-01T12:00:00+02:00", "after 2024-05-01T10:00:00Z"},
		{"before 2024-04-30", "before 2024-04-30T00:00:00Z"},
		{"after 1714557600", "after 2024-05-01T10:00:00Z"},
		{"after 1714557600.5", "after 2024-05-01T10:00:00.5Z"},
		{"after 5m ago", "after 2024-05-01T11:55:00Z"},
		{"after 1d ago", "after 2024-04-30T12:00:00Z"},
		{"after 1h30m ago and before now", "(after 2024-05-01T10:30:00Z and before 2024-05-01T12:00:00Z)"},
	}
	for _, c := range cases {
		q, err := Parse(c.in, testNow, DefaultConfig())
		if c.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want error", c.in, q)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
		// The canonical form parses back to itself.
		q2, err := Parse(q.String(), testNow, DefaultConfig())
		if err != nil || q2.String() != q.String() {
			t.Errorf("reparse of %q: %v, %v", q.String(), q2, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in       string
		pos      int    // 1-based position in the message
		expected string // substring of SyntaxError.Expected
	}{
		{"", 1, "a term"},
		{"host", 5, "IP address"},
		{"host 1.2.3", 6, "IP address"},
		{"host fe80::1%eth0", 6, "IP address"},
		{"port 65536", 6, "port number"},
		{"port -1", 6, "port number"},
		{"vlan 4096", 6, "VLAN ID"},
		{"proto foo", 7, "protocol"},
		{"proto 256", 7, "protocol"},
		{"net 10.0.0.0", 13, `"mask"`},
		{"net 10.0.0.0 mask 255.0.255.0", 19, "contiguous"},
		{"net 10.0.0.0 mask ffff::", 19, "family"},
		{"net 10.0.0.0/33", 5, "prefix"},
		{"host 1.2.3.4 port 53", 14, `"and", "or"`},
		{"(host 1.2.3.4", 14, `")" closing "(" at position 1`},
		{"host 1.2.3.4)", 13, `"and", "or"`},
		{"tcp and", 8, "a term"},
		{"tcp or or udp", 8, "a term"},
		{"after", 6, "a time"},
		{"after yesterday", 7, "a time"},
		{"after 5x ago", 7, "duration"},
		{"after 3000w ago", 7, "1970"},
		{"after 100000w ago", 7, "duration"},
		{"before 99999999999", 8, "1970"},
		{"bogus", 1, "a term"},
	}
	for _, c := range cases {
		_, err := Parse(c.in, testNow, DefaultConfig())
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v, want a SyntaxError", c.in, err)
			continue
		}
		if se.Pos+1 != c.pos || !strings.Contains(se.Expected, c.expected) {
			t.Errorf("Parse(%q): %v; want position %d expecting %q", c.in, err, c.pos, c.expected)
		}
		if !strings.Contains(err.Error(), "position") {
			t.Errorf("error %q has no position", err)
		}
	}
}

func TestLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxLength = 20
	if _, err := Parse("host 1.2.3.4 and port 53", testNow, cfg); !errors.Is(err, ErrTooLong) {
		t.Errorf("long query: %v", err)
	}
	cfg = DefaultConfig()
	cfg.MaxNodes = 3
	if _, err := Parse("tcp and port 1", testNow, cfg); err != nil {
		t.Errorf("3 nodes: %v", err)
	}
	if _, err := Parse("tcp and port 1 and vlan 2", testNow, cfg); !errors.Is(err, ErrTooComplex) {
		t.Errorf("4 nodes: %v", err)
	}
	cfg = DefaultConfig()
	deep := strings.Repeat("(", cfg.MaxDepth+1) + "tcp" + strings.Repeat(")", cfg.MaxDepth+1)
	if _, err := Parse(deep, testNow, cfg); !errors.Is(err, ErrTooComplex) {
		t.Errorf("deep parens: %v", err)
	}
	nots := strings.Repeat("not ", cfg.MaxDepth+1) + "tcp"
	if _, err := Parse(nots, testNow, cfg); !errors.Is(err, ErrTooComplex) {
		t.Errorf("deep nots: %v", err)
	}
	ok := strings.Repeat("(", cfg.MaxDepth) + "tcp" + strings.Repeat(")", cfg.MaxDepth)
	if _, err := Parse(ok, testNow, cfg); err != nil {
		t.Errorf("depth at limit: %v", err)
	}
}

func TestWindow(t *testing.T) {
	cfg := DefaultConfig()
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	cases := []struct {
		in       string
		from, to time.Time
		err      error
	}{
		{in: "tcp", from: testNow.Add(-time.Hour), to: testNow},
		{in: "tcp and after 3h ago", from: testNow.Add(-3 * time.Hour), to: testNow},
		{in: "before 2024-05-01T06:00:00Z", from: at("2024-05-01T05:00:00Z"), to: at("2024-05-01T06:00:00Z")},
		{in: "after 2024-05-01T06:00:00Z and before 2024-05-01T07:00:00Z", from: at("2024-05-01T06:00:00Z"), to: at("2024-05-01T07:00:00Z")},
		// and intersects
		{in: "after 2024-05-01T06:00:00Z and after 2024-05-01T08:00:00Z and before 2024-05-01T09:00:00Z and before 2024-05-01T10:00:00Z",
			from: at("2024-05-01T08:00:00Z"), to: at("2024-05-01T09:00:00Z")},
		// or takes the hull
		{in: "(after 2024-05-01T06:00:00Z and before 2024-05-01T07:00:00Z) or (after 2024-05-01T09:00:00Z and before 2024-05-01T10:00:00Z)",
			from: at("2024-05-01T06:00:00Z"), to: at("2024-05-01T10:00:00Z")},
		// an unbounded branch of an or unbounds it: default window
		{in: "(after 2024-05-01T11:30:00Z) or tcp", from: testNow.Add(-time.Hour), to: testNow},
		// not bounds nothing
		{in: "not before 2024-05-01T11:30:00Z", from: testNow.Add(-time.Hour), to: testNow},
		// after in the future: one default window from it
		{in: "after 2024-05-01T13:00:00Z", from: at("2024-05-01T13:00:00Z"), to: at("2024-05-01T14:00:00Z")},
		{in: "after 2024-05-01T07:00:00Z and before 2024-05-01T06:00:00Z", err: ErrEmptyWindow},
		{in: "after 30d ago", err: ErrWindowTooLong},
	}
	for _, c := range cases {
		q, err := Parse(c.in, testNow, cfg)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Parse(%q): %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if from, to := q.Window(); !from.Equal(c.from) || !to.Equal(c.to) {
			t.Errorf("Parse(%q) window [%v, %v], want [%v, %v]", c.in, from, to, c.from, c.to)
		}
	}
}

func rec(src, dst string, sp, dp uint16, proto uint8, vlan, inner uint16, start, end time.Time) *flow.Record {
	s, fam := flow.AddrFromNetip(netip.MustParseAddr(src))
	d, _ := flow.AddrFromNetip(netip.MustParseAddr(dst))
	return &flow.Record{
		Tuple: flow.Tuple{Src: s, Dst: d, SrcPort: sp, DstPort: dp, Proto: proto, Family: fam, VLAN: vlan, InnerVLAN: inner},
		Start: start, End: end,
	}
}

func TestMatch(t *testing.T) {
	t0 := testNow.Add(-30 * time.Minute)
	t1 := testNow.Add(-20 * time.Minute)
	dns := rec("192.168.1.52", "8.8.8.8", 54321, 53, flow.ProtoUDP, 0, 0, t0, t1)
	web6 := rec("2001:db8::1", "2001:db8:1::2", 40000, 443, flow.ProtoTCP, 10, 20, t0, t1)
	ping := rec("10.0.0.1", "10.0.0.2", 8, 0, flow.ProtoICMP, 0, 0, t0, t0)
	ping6 := rec("fe80::1", "fe80::2", 128, 0, flow.ProtoICMPv6, 0, 0, t0, t0)
	all := []*flow.Record{dns, web6, ping, ping6}
	cases := []struct {
		q    string
		want []*flow.Record
	}{
		{"host 8.8.8.8", []*flow.Record{dns}},
		{"host 192.168.1.52", []*flow.Record{dns}},
		{"host ::ffff:8.8.8.8", []*flow.Record{dns}},
		{"host 2001:db8:1::2", []*flow.Record{web6}},
		{"net 192.168.0.0/16", []*flow.Record{dns}},
		{"net 10.0.0.0 mask 255.0.0.0", []*flow.Record{ping}},
		{"net 2001:db8::/32", []*flow.Record{web6}},
		{"net ::/0", []*flow.Record{web6, ping6}},
		{"net 0.0.0.0/0", []*flow.Record{dns, ping}},
		{"port 53", []*flow.Record{dns}},
		{"port 8", nil}, // ICMP type is not a port
		{"port 443 or port 54321", []*flow.Record{dns, web6}},
		{"icmp", []*flow.Record{ping, ping6}},
		{"proto 1", []*flow.Record{ping}},
		{"icmp6", []*flow.Record{ping6}},
		{"tcp or udp", []*flow.Record{dns, web6}},
		{"not tcp and not udp", []*flow.Record{ping, ping6}},
		{"vlan 10", []*flow.Record{web6}},
		{"vlan 20", []*flow.Record{web6}},
		{"vlan 0", []*flow.Record{dns, ping, ping6}},
		{"after 25m ago", []*flow.Record{dns, web6}},
		{"before 25m ago", all},
		{"before 35m ago", nil},
		{"after 15m ago", nil},
		{"(udp or icmp) and net 10.0.0.0/8 or port 443", []*flow.Record{web6, ping}},
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

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"now":                  testNow,
		"5m ago":               testNow.Add(-5 * time.Minute),
		"2024-05-01T10:00:00Z": time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		"1714557600":           time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, testNow)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5m", "5m ago now", "tomorrow"} {
		if _, err := ParseTime(in, testNow); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseTime(%q): %v, want syntax error", in, err)
		}
	}
}
