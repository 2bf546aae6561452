package engine_test

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// zeekCID matches a line of Zeek's community-id test baselines.
var zeekCID = regexp.MustCompile(`orig_h=([^,]+), orig_p=(\d+)/\w+, resp_h=([^,]+), resp_p=(\d+)/\w+, proto=(\d+).*\], (1:\S+)`)

// TestCommunityIDsMatchZeek runs Zeek's community-id captures through the
// sensor and requires every Community ID of Zeek's baseline to be the ID
// of a flow between the same two hosts. (Zeek's SCTP baseline hashes
// ports 0, since Zeek has no SCTP analyzer; the spec's baselines are the
// authority there and are checked in package flow.)
func TestCommunityIDsMatchZeek(t *testing.T) {
	dir := testenv.Pcap(t, "zeek/communityid")
	for _, name := range []string{"tcp", "udp", "icmp", "icmp6", "ipv6", "arp"} {
		t.Run(name, func(t *testing.T) {
			sink, _, err := runFile(t, filepath.Join(dir, name+".pcap"), longTimeouts())
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string][]flow.Record{}
			for _, r := range sink.finals() {
				byID[r.CommunityID] = append(byID[r.CommunityID], r)
			}
			f, err := os.Open(filepath.Join(dir, name+".pcap.out"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n := 0
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				m := zeekCID.FindStringSubmatch(sc.Text())
				if m == nil {
					continue
				}
				n++
				a, b := netip.MustParseAddr(m[1]), netip.MustParseAddr(m[3])
				recs := byID[m[6]]
				if len(recs) == 0 {
					t.Errorf("Zeek's %s (%s -> %s) is not the ID of any tapir flow", m[6], a, b)
					continue
				}
				r := recs[0]
				s, d := r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family)
				if !(s == a && d == b) && !(s == b && d == a) {
					t.Errorf("%s: tapir flow %s, Zeek %s -> %s", m[6], r.Tuple, a, b)
				}
			}
			if name == "arp" {
				if n != 0 {
					t.Fatalf("arp baseline lists %d IDs", n)
				}
				for _, r := range sink.finals() {
					if r.CommunityID != "" {
						t.Errorf("ARP pseudo flow %s has Community ID %s", r.Tuple, r.CommunityID)
					}
				}
				if len(sink.finals()) == 0 {
					t.Error("ARP traffic produced no (link-layer) flow")
				}
			} else if n == 0 {
				t.Fatal("no baseline line parsed")
			}
		})
	}
}

// suricataCheck is one check of a suricata-verify test.yaml.
type suricataCheck struct {
	Filter struct {
		Count int            `yaml:"count"`
		Match map[string]any `yaml:"match"`
	} `yaml:"filter"`
}

// TestCommunityIDsMatchSuricata checks suricata-verify's expectations for
// flow events: Community ID (the same-address case included), endpoints,
// and packets and bytes per direction.
func TestCommunityIDsMatchSuricata(t *testing.T) {
	for _, name := range []string{"community-id-ipv4", "community-id-ipv6", "community-id-sameip"} {
		t.Run(name, func(t *testing.T) {
			dir := testenv.Pcap(t, filepath.Join("suricata-verify", name))
			raw, err := os.ReadFile(filepath.Join(dir, "test.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var spec struct {
				Checks []suricataCheck `yaml:"checks"`
			}
			if err := yaml.Unmarshal(raw, &spec); err != nil {
				t.Fatal(err)
			}
			// The seed comes from the test's suricata.yaml.
			cfg := longTimeouts()
			if sy, err := os.ReadFile(filepath.Join(dir, "suricata.yaml")); err == nil {
				if m := regexp.MustCompile(`community-id-seed:\s*(\d+)`).FindSubmatch(sy); m != nil {
					seed, _ := strconv.Atoi(string(m[1]))
					cfg.CommunitySeed = uint16(seed)
				}
			}
			sink, _, err := runFile(t, filepath.Join(dir, "input.pcap"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, c := range spec.Checks {
				m := c.Filter.Match
				cid, _ := m["community_id"].(string)
				if cid == "" || (m["event_type"] != "flow" && m["event_type"] != "tls") {
					continue
				}
				var found *flow.Record
				for _, r := range sink.finals() {
					if r.CommunityID == cid {
						r := r
						found = &r
					}
				}
				if found == nil {
					t.Errorf("no flow with Community ID %s (%v)", cid, m)
					continue
				}
				checked++
				tp := found.Tuple
				if src := netip.MustParseAddr(m["src_ip"].(string)); tp.Src.Netip(tp.Family) != src {
					t.Errorf("%s: initiator %s, suricata %s", cid, tp.Src.Netip(tp.Family), src)
				}
				if sp := m["src_port"].(int); int(tp.SrcPort) != sp || int(tp.DstPort) != m["dest_port"].(int) {
					t.Errorf("%s: ports %d->%d, suricata %d->%v", cid, tp.SrcPort, tp.DstPort, sp, m["dest_port"])
				}
				for key, got := range map[string]uint64{
					"flow.pkts_toserver": found.Source.Packets, "flow.pkts_toclient": found.Destination.Packets,
					"flow.bytes_toserver": found.Source.Bytes, "flow.bytes_toclient": found.Destination.Bytes,
				} {
					if want, ok := m[key].(int); ok && uint64(want) != got {
						t.Errorf("%s %s: tapir %d, suricata %d", cid, key, got, want)
					}
				}
			}
			if checked == 0 {
				t.Fatal("no check applied")
			}
			t.Logf("%d suricata checks applied", checked)
		})
	}
}
