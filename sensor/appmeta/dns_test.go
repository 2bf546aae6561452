package appmeta

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

var dnsCaptures = []string{
	"arkime/dns-udp.pcap",
	"arkime/dns-tcp.pcap",
	"arkime/curl-enabled-tls13.pcap",
	"tcpdump/dns_udp.pcap",
	"tcpdump/dns_tcp.pcap",
	"suricata-verify/dns-udp-nxdomain-soa/dns-udp-nxdomain-soa.pcap",
	"gopacket/test_dns.pcap",
	"zeek/wikipedia.pcap",
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

func tsharkName(s string) string {
	if s == "<Root>" {
		return ""
	}
	return s
}

// TestDNSMatchesTshark checks every DNS flow's first transaction against
// what tshark decodes from the same packets: the first query's name and
// type, the first response's code and its answer records (name, type,
// TTL, address or target name).
func TestDNSMatchesTshark(t *testing.T) {
	fields := []string{"dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.count.answers",
		"dns.resp.name", "dns.resp.type", "dns.resp.ttl", "dns.a", "dns.aaaa", "dns.cname", "dns.ptr.domain_name", "dns.ns"}
	total := 0
	for _, rel := range dnsCaptures {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			got, _ := extract(t, path, DefaultConfig())
			type want struct{ query, resp map[string]string }
			wants := map[string]*want{}
			var order []string
			for _, r := range tsharkRows(t, path, "dns && !icmp && !icmpv6", fields...) {
				w := wants[r.key]
				if w == nil {
					w = &want{}
					wants[r.key] = w
					order = append(order, r.key)
				}
				if r.vals["dns.flags.response"] == "1" || r.vals["dns.flags.response"] == "True" {
					if w.resp == nil {
						w.resp = r.vals
					}
				} else if w.query == nil {
					w.query = r.vals
				}
			}
			if len(wants) == 0 {
				t.Fatal("tshark found no DNS")
			}
			for _, key := range order {
				w := wants[key]
				m := got[key]
				if m == nil || m.DNS == nil {
					t.Errorf("%s: no DNS metadata", key)
					continue
				}
				d := m.DNS
				total++
				q := w.query
				if q == nil {
					q = w.resp
				}
				if name := tsharkName(split(q["dns.qry.name"])[0]); d.QueryName != name {
					t.Errorf("%s: query name %q, tshark %q", key, d.QueryName, name)
				}
				if typ := atoi(t, split(q["dns.qry.type"])[0]); int(d.QueryType) != typ {
					t.Errorf("%s: query type %d, tshark %d", key, d.QueryType, typ)
				}
				if w.resp == nil {
					if d.HasResponse {
						t.Errorf("%s: response where tshark saw none", key)
					}
					continue
				}
				r := w.resp
				if !d.HasResponse {
					t.Errorf("%s: no response; tshark saw one", key)
					continue
				}
				if rc := atoi(t, r["dns.flags.rcode"]); int(d.ResponseCode) != rc {
					t.Errorf("%s: rcode %d, tshark %d", key, d.ResponseCode, rc)
				}
				n := atoi(t, r["dns.count.answers"])
				if len(d.Answers) != min(n, DefaultConfig().MaxAnswers) {
					t.Errorf("%s: %d answers, tshark %d", key, len(d.Answers), n)
					continue
				}
				names, types, ttls := split(r["dns.resp.name"]), split(r["dns.resp.type"]), split(r["dns.resp.ttl"])
				typed := map[uint16][]string{
					dnsTypeA: split(r["dns.a"]), dnsTypeAAAA: split(r["dns.aaaa"]), dnsTypeCNAME: split(r["dns.cname"]),
					dnsTypePTR: split(r["dns.ptr.domain_name"]), dnsTypeNS: split(r["dns.ns"]),
				}
				for i, a := range d.Answers {
					if a.Name != tsharkName(names[i]) || int(a.Type) != atoi(t, types[i]) || int64(a.TTL) != int64(atoi(t, ttls[i])) {
						t.Errorf("%s: answer %d = %+v, tshark %s %s %s", key, i, a, names[i], types[i], ttls[i])
					}
					if vals := typed[a.Type]; vals != nil {
						if a.Data != tsharkName(vals[0]) {
							t.Errorf("%s: answer %d data %q, tshark %q", key, i, a.Data, vals[0])
						}
						typed[a.Type] = vals[1:]
					} else if a.Data != "" {
						t.Errorf("%s: answer %d of type %d has data %q", key, i, a.Type, a.Data)
					}
				}
			}
		})
	}
	if total == 0 && !t.Failed() {
		t.Fatal("no DNS flow compared")
	}
}

// TestDNSNameLoop checks that a compression pointer loop is an error.
func TestDNSNameLoop(t *testing.T) {
	// header, one question whose name is a pointer to itself
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
	var m flow.DNSMeta
	if _, err := ParseDNS(msg, &m, 8); err == nil {
		t.Fatal("self-pointing name accepted")
	}
	// two names pointing at each other
	msg = []byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1}
	if _, err := ParseDNS(msg, &m, 8); err == nil {
		t.Fatal("pointer loop accepted")
	}
}
