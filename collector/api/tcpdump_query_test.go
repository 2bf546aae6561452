package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// endpoints is a flow as "proto src:sport > dst:dport", oriented from
// its initiator.
type endpoints struct {
	proto      string
	src, dst   netip.Addr
	sport, dpt uint16
}

func (e endpoints) String() string {
	return e.proto + " " + netip.AddrPortFrom(e.src, e.sport).String() + " > " + netip.AddrPortFrom(e.dst, e.dpt).String()
}

// tsharkInitiators is the oracle's flows of a capture: for every TCP and
// UDP stream tshark numbers, the endpoints of its first packet.
func tsharkInitiators(t *testing.T, path string) []endpoints {
	t.Helper()
	var out []endpoints
	for _, proto := range []string{"tcp", "udp"} {
		b, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-Y", proto+" && !icmp && !icmpv6", "-T", "fields",
			"-e", proto+".stream", "-e", "ip.src", "-e", proto+".srcport", "-e", "ip.dst", "-e", proto+".dstport",
			"-e", "ipv6.src", "-e", "ipv6.dst").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		seen := map[string]bool{}
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 7 || seen[f[0]] {
				continue
			}
			if f[1] == "" { // IPv6
				f[1], f[3] = f[5], f[6]
			}
			seen[f[0]] = true
			sp, _ := strconv.Atoi(f[2])
			dp, _ := strconv.Atoi(f[4])
			out = append(out, endpoints{proto, netip.MustParseAddr(f[1]), netip.MustParseAddr(f[3]), uint16(sp), uint16(dp)})
		}
	}
	return out
}

// apiFlows lists the endpoints of the flow records a query matches.
func apiFlows(t *testing.T, ts *testServer, query string) []string {
	t.Helper()
	resp, body := ts.get(t, tokBob, "/api/v1/flows?query="+url.QueryEscape(query))
	if resp.StatusCode != 200 {
		t.Fatalf("%q: %d %s", query, resp.StatusCode, body)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var doc struct {
			Source struct {
				IP   netip.Addr `json:"ip"`
				Port uint16     `json:"port"`
			} `json:"source"`
			Destination struct {
				IP   netip.Addr `json:"ip"`
				Port uint16     `json:"port"`
			} `json:"destination"`
			Network struct {
				Transport string `json:"transport"`
			} `json:"network"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, endpoints{doc.Network.Transport, doc.Source.IP, doc.Destination.IP, doc.Source.Port, doc.Destination.Port}.String())
	}
	slices.Sort(out)
	return out
}

// TestFlowsTcpdumpQueries lists wikipedia.pcap's flows (one sensor) with
// tcpdump-style queries and compares them with the streams tshark finds
// in the original capture, selected by the same predicate on each
// stream's first packet (src is a flow's initiator). The capture holds a
// stray TCP packet from port 80, so src and dst port 80 differ.
func TestFlowsTcpdumpQueries(t *testing.T) {
	rel := "zeek/wikipedia.pcap"
	_, ts, _ := setup(t, rel, []string{"s1"}, func(cfg *Config) { cfg.Query.MaxWindow = 0 })
	oracle := tsharkInitiators(t, testenv.Plain(t, testenv.Pcap(t, rel)))
	client := netip.MustParseAddr("141.142.220.118")
	wiki := netip.MustParsePrefix("208.80.152.0/24")
	for _, tc := range []struct {
		query string
		sel   func(e endpoints) bool
	}{
		{"tcp port 80", func(e endpoints) bool { return e.proto == "tcp" && (e.sport == 80 || e.dpt == 80) }},
		{"tcp dst port 80", func(e endpoints) bool { return e.proto == "tcp" && e.dpt == 80 }},
		{"tcp src port 80", func(e endpoints) bool { return e.proto == "tcp" && e.sport == 80 }},
		{"udp and port 53", func(e endpoints) bool { return e.proto == "udp" && (e.sport == 53 || e.dpt == 53) }},
		{"udp dst port 53 or 137", func(e endpoints) bool { return e.proto == "udp" && (e.dpt == 53 || e.dpt == 137) }},
		{"src host 141.142.220.118", func(e endpoints) bool { return e.src == client }},
		{"dst host 141.142.220.235", func(e endpoints) bool { return e.dst == netip.MustParseAddr("141.142.220.235") }},
		{"dst net 208.80.152.0/24", func(e endpoints) bool { return wiki.Contains(e.dst) }},
		{"src and dst net 141.142.0.0/16", func(e endpoints) bool {
			n := netip.MustParsePrefix("141.142.0.0/16")
			return n.Contains(e.src) && n.Contains(e.dst)
		}},
		{"host 141.142.220.118 and not port 53", func(e endpoints) bool {
			return (e.src == client || e.dst == client) && e.sport != 53 && e.dpt != 53
		}},
		{"tcp dst portrange 1-1023", func(e endpoints) bool { return e.proto == "tcp" && e.dpt <= 1023 }},
	} {
		var want []string
		for _, e := range oracle {
			if tc.sel(e) {
				want = append(want, e.String())
			}
		}
		slices.Sort(want)
		got := apiFlows(t, ts, tc.query+" and after 1d ago")
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%q: %d flows, tshark's streams give %d\n--- got\n%s\n--- want\n%s",
				tc.query, len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
