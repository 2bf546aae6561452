package enrich_test

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/linktest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// sensorID names the sensor of sensorRecords.
const sensorID = "test-sensor"

// sensorConfig keeps every flow open to the end of the capture, with no
// periodic updates: one final record per flow.
const sensorConfig = `sensor_id: ` + sensorID + `
flows:
  idle_timeout: 24h
  active_timeout: 48h
  update_interval: -1ns
`

// sensorRecords runs the real sensor (the tapir-sensor binary) over a
// shared capture, streaming to an in-process fake collector
// (internal/linktest), and returns its final flow records as received.
func sensorRecords(t testing.TB, rel string) []flow.Record {
	t.Helper()
	path := testenv.Pcap(t, rel)
	bin := buildSensor(t)
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	c := linktest.StartCollector(t, pki, store, "127.0.0.1:0")
	cfg := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(cfg, []byte(sensorConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-r", path, "--config", cfg, "--collector", c.Addr().String(),
		"--tls-dir", pki.Dir, "--spool-dir", t.TempDir(), "--drain-timeout", "30s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor -r %s: %v\n%s", rel, err, out)
	}
	var out []flow.Record
	for _, b := range store.Batches(sensorID) {
		for _, r := range b.Records {
			if r.Reason.Final() {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no flow records", rel)
	}
	return out
}

// buildSensor builds tapir-sensor into a test temp dir.
func buildSensor(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tapir-sensor")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tapir-sensor")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tapir-sensor: %v: %s", err, out)
	}
	return bin
}

func addrFilter(addr string) string {
	if strings.Contains(addr, ":") {
		return "ipv6.addr==" + addr
	}
	return "ip.addr==" + addr
}

// tsharkStreams lists the TCP and UDP conversations (tshark stream
// indexes) that involve addr.
func tsharkStreams(t *testing.T, pcap, addr string) int {
	tshark := testenv.Tool(t, "tshark")
	out, err := exec.Command(tshark, "-r", pcap, "-Y", addrFilter(addr), "-T", "fields", "-e", "tcp.stream", "-e", "udp.stream").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 2 && f[0] != "" {
			seen["tcp"+f[0]] = true
		} else if len(f) == 2 && f[1] != "" {
			seen["udp"+f[1]] = true
		}
	}
	return len(seen)
}

// TestIntelAlertEndToEnd drives the real sensor's records of a shared
// capture through the chain with a STIX feed naming one server of the
// capture and a plain feed naming addresses absent from it: exactly the
// conversations tshark counts for that server raise an alert, written to
// the alerts file, and nothing else does.
func TestIntelAlertEndToEnd(t *testing.T) {
	const bad = "208.80.152.118"
	pcap := testenv.Pcap(t, "zeek/wikipedia.pcap")
	want := tsharkStreams(t, pcap, bad)
	if want == 0 {
		t.Fatalf("tshark sees no conversation with %s", bad)
	}
	dir := t.TempDir()
	stix := filepath.Join(dir, "feed.json")
	if err := os.WriteFile(stix, []byte(`{"type":"bundle","id":"bundle--1","objects":[
	 {"type":"identity","id":"identity--1","name":"x"},
	 {"type":"indicator","spec_version":"2.1","id":"indicator--a1","name":"wiki server","pattern_type":"stix",
	  "pattern":"[ipv4-addr:value = '`+bad+`']","confidence":80,"valid_from":"2020-01-01T00:00:00Z"},
	 {"type":"indicator","spec_version":"2.1","id":"indicator--a2","pattern_type":"stix","revoked":true,
	  "pattern":"[ipv4-addr:value = '141.142.220.118']","valid_from":"2020-01-01T00:00:00Z"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(plain, []byte("# nothing here is in the capture\n192.0.2.1\n198.51.100.0/24\nexample.invalid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alerts := filepath.Join(dir, "alerts.jsonl")

	cfg := enrich.DefaultConfig()
	cfg.Intel.Enabled = true
	cfg.Intel.Feeds = []intelFeed{{Name: "stix-feed", File: stix}, {Name: "plain-feed", File: plain}}
	cfg.Alerts.File = alerts
	c, err := enrich.New(cfg, enrich.Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	recs := sensorRecords(t, "zeek/wikipedia.pcap")
	matched := 0
	for i := range recs {
		c.Enrich(&recs[i])
		r := &recs[i]
		src, dst := r.Tuple.Src.Netip(r.Tuple.Family).String(), r.Tuple.Dst.Netip(r.Tuple.Family).String()
		involved := src == bad || dst == bad
		var n int
		if r.Enrichment != nil {
			n = len(r.Enrichment.Threats)
		}
		if involved != (n == 1) || n > 1 {
			t.Errorf("flow %s -> %s: %d matches", src, dst, n)
		}
		if n == 1 {
			matched++
			m := r.Enrichment.Threats[0]
			field := "destination.ip"
			if src == bad {
				field = "source.ip"
			}
			if m.Feed != "stix-feed" || m.Indicator != bad || m.Type != "ipv4-addr" || m.Field != field || m.ID != "indicator--a1" || m.Confidence != "80" {
				t.Errorf("match %+v", m)
			}
		}
	}
	c.Stop()
	if matched != want {
		t.Fatalf("%d flows matched, tshark counts %d conversations with %s", matched, want, bad)
	}
	f, err := os.Open(alerts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var doc struct {
			Event  struct{ Kind string } `json:"event"`
			Threat struct {
				Feed      struct{ Name string } `json:"feed"`
				Indicator struct {
					Type, IP string
				} `json:"indicator"`
			} `json:"threat"`
			Network struct {
				CommunityID string `json:"community_id"`
			} `json:"network"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Event.Kind != "alert" || doc.Threat.Feed.Name != "stix-feed" || doc.Threat.Indicator.IP != bad || doc.Network.CommunityID == "" {
			t.Errorf("alert %s", sc.Text())
		}
	}
	if lines != want {
		t.Fatalf("%d alerts written, want %d", lines, want)
	}
	if pub, drop := c.Alerts(); pub != uint64(want) || drop != 0 {
		t.Fatalf("alerts published %d dropped %d", pub, drop)
	}
}

type intelFeed = enrich.IntelFeed

// dnsFromTshark builds the DNS metadata of each DNS flow of a capture from
// tshark's decode (the first response of each flow), keyed by
// client-ip|client-port|server-ip|server-port.
func dnsFromTshark(t *testing.T, pcap string) map[string]*flow.DNSMeta {
	tshark := testenv.Tool(t, "tshark")
	out, err := exec.Command(tshark, "-r", pcap, "-Y", "dns.flags.response==1 && udp", "-T", "fields", "-E", "separator=|",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "udp.srcport", "-e", "udp.dstport",
		"-e", "dns.qry.name", "-e", "dns.qry.type", "-e", "dns.flags.rcode", "-e", "dns.a", "-e", "dns.aaaa").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	m := map[string]*flow.DNSMeta{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 11 {
			continue
		}
		srv, cli := f[0]+f[1], f[2]+f[3]
		key := cli + "|" + f[5] + "|" + srv + "|" + f[4]
		if _, ok := m[key]; ok {
			continue
		}
		qt, _ := strconv.Atoi(strings.Split(f[7], ",")[0])
		rc, _ := strconv.Atoi(f[8])
		d := &flow.DNSMeta{QueryName: strings.Split(f[6], ",")[0], QueryType: uint16(qt), HasResponse: true, ResponseCode: uint8(rc)}
		for _, a := range strings.Split(f[9], ",") {
			if a != "" {
				d.Answers = append(d.Answers, flow.DNSAnswer{Name: d.QueryName, Type: 1, Data: a})
			}
		}
		for _, a := range strings.Split(f[10], ",") {
			if a != "" {
				d.Answers = append(d.Answers, flow.DNSAnswer{Name: d.QueryName, Type: 28, Data: a})
			}
		}
		m[key] = d
	}
	return m
}

// TestPassiveDNSFromCapture feeds the DNS flows of a real capture (DNS
// metadata from the sensor, or from tshark's decode where the sensor has
// none) and checks that the flows to each answered address are named with
// the query tshark shows, by the client that asked, also after a restart
// from the snapshot.
func TestPassiveDNSFromCapture(t *testing.T) {
	for _, rel := range []string{"arkime/curl-enabled-tls13.pcap", "zeek/wikipedia.pcap"} {
		t.Run(rel, func(t *testing.T) {
			pcap := testenv.Pcap(t, rel)
			dns := dnsFromTshark(t, pcap)
			recs := sensorRecords(t, rel)
			// expected: address -> the name tshark shows (the last answer wins)
			answered := map[netip.Addr]string{}
			var dnsRecs, others []flow.Record
			for _, r := range recs {
				key := r.Tuple.Src.Netip(r.Tuple.Family).String() + "|" + strconv.Itoa(int(r.Tuple.SrcPort)) + "|" +
					r.Tuple.Dst.Netip(r.Tuple.Family).String() + "|" + strconv.Itoa(int(r.Tuple.DstPort))
				if d := dns[key]; d != nil {
					if r.App == nil {
						r.App = &flow.AppMeta{}
					}
					if r.App.DNS == nil {
						r.App.DNS = d
					}
				}
				if r.App != nil && r.App.DNS != nil && r.App.DNS.HasResponse {
					dnsRecs = append(dnsRecs, r)
					for _, a := range r.App.DNS.Answers {
						if ad, err := netip.ParseAddr(a.Data); err == nil && (a.Type == 1 || a.Type == 28) {
							answered[ad] = strings.ToLower(r.App.DNS.QueryName)
						}
					}
				} else {
					others = append(others, r)
				}
			}
			if len(answered) == 0 {
				t.Fatalf("no DNS answers in %s", rel)
			}
			sort.SliceStable(dnsRecs, func(i, j int) bool { return dnsRecs[i].End.Before(dnsRecs[j].End) })
			dir := t.TempDir()
			newChain := func() *enrich.Chain {
				cfg := enrich.DefaultConfig()
				cfg.PDNS.Enabled = true
				cfg.StateDir = dir
				c, err := enrich.New(cfg, enrich.Dependencies{})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				return c
			}
			c := newChain()
			for i := range dnsRecs {
				c.Enrich(&dnsRecs[i])
			}
			check := func(c *enrich.Chain, stage string) {
				named := 0
				for _, r := range others {
					r.Enrichment = nil
					c.Enrich(&r)
					dst := r.Tuple.Dst.Netip(r.Tuple.Family)
					want, ok := answered[dst]
					got := ""
					if r.Enrichment != nil {
						got = r.Enrichment.Domain
					}
					if ok && (got != want || r.Enrichment.DomainSource != "dns") {
						t.Errorf("%s: flow to %s named %q, tshark says %q", stage, dst, got, want)
					}
					if ok {
						named++
					}
				}
				if named == 0 {
					t.Fatalf("%s: no flow went to an answered address", stage)
				}
			}
			check(c, "live")
			c.Stop()
			c2 := newChain()
			check(c2, "after restart")
			c2.Stop()
		})
	}
}
