package query

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is one of the
// package's sentinels, that an accepted query stays within the limits and
// that its canonical form parses back to the same canonical form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"host 1.2.3.4", "net 10.0.0.0/8", "net 10.0.0.0 mask 255.0.0.0",
		"port 53 and (tcp or udp)", "not vlan 10 or icmp",
		"host 2001:db8::1 and after 5m ago and before now",
		"after 2024-05-01T10:00:00Z and before 1714557600.25",
		"!(proto 17) && host ::ffff:1.2.3.4 || net 2001:db8::/32",
		"((((tcp))))", "after 1d ago", "before 2024-04-30",
		// tcpdump's forms.
		"tcp port 80", "udp and port 53", "src host 10.0.0.1", "dst port 443",
		"src net 10.0.0.0/8", "host 10.0.0.1 and not port 22",
		"src or dst host 10.0.0.1", "src and dst net 10.0.0.0 mask 255.0.0.0",
		"tcp dst portrange 1-1023", "ip6 proto udp", "ip host 10.0.0.1",
		"port 80 or 443", "tcp port 80 or (443 and not 8443)", "10.0.0.0/8 and not 10.0.0.1",
		"dst 2001:db8::/32", "not src and dst port 1",
		// Field predicates.
		"tls.client.server_name == example.com", "dns.question.name == *.example.com",
		`user_agent.original == "curl/8.0 (x\"86\")"`, "sni=a.b and packets>100", "bytes >= 1MiB",
		"duration >= 5s or event.duration < 1ms", "threat.indicator.name exists", "source.ip == 10.0.0.0/8",
		"destination.as.number != 15133", "not tapir.final == false", "sni == *xampl* and port 443",
	} {
		f.Add(s)
	}
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s, testNow, cfg)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrTooComplex) &&
				!errors.Is(err, ErrEmptyWindow) && !errors.Is(err, ErrWindowTooLong) {
				t.Fatalf("Parse(%q): error %v wraps no sentinel", s, err)
			}
			return
		}
		if q.Nodes() > cfg.MaxNodes || q.To.Before(q.From) {
			t.Fatalf("Parse(%q): %d nodes, window [%v, %v]", s, q.Nodes(), q.From, q.To)
		}
		c := q.String()
		q2, err := Parse(c, testNow, cfg)
		if err != nil {
			// The canonical form may be longer than the input (resolved
			// times, added parentheses); only the length limit may refuse it.
			if errors.Is(err, ErrTooLong) || errors.Is(err, ErrTooComplex) {
				return
			}
			t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
		}
		if q2.String() != c {
			t.Fatalf("canonical %q reparses as %q", c, q2.String())
		}
		if !q2.From.Equal(q.From) || !q2.To.Equal(q.To) {
			t.Fatalf("window of %q changed on reparse: [%v %v] vs [%v %v]", s, q.From, q.To, q2.From, q2.To)
		}
	})
}
