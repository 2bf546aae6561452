package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// capFlow is one flow instance of a capture as one sensor saw it.
type capFlow struct {
	sensor  string
	rec     flow.Record
	builder block.Builder
	blocks  []storage.Block
}

// capture is a shared capture split among sensors and turned into
// storage batches: flow records and packet blocks, as the sensors would
// have sent them.
type capture struct {
	path    string
	first   time.Time
	last    time.Time
	flows   []*capFlow
	keys    map[flow.Key]flow.Tuple // key -> tuple of its first packet
	packets int
}

// loadCapture reads a classic pcap and assigns packet i to
// sensors[i%len(sensors)]. Each (sensor, flow key) becomes one flow
// instance whose blocks hold at most perBlock packets. Packets without an
// IP tuple are left out.
func loadCapture(t testing.TB, path string, sensors []string, perBlock int) *capture {
	t.Helper()
	link, pkts := testenv.ReadPcap(t, path)
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	c := &capture{path: path, keys: map[flow.Key]flow.Tuple{}}
	type fk struct {
		sensor string
		key    flow.Key
	}
	byKey := map[fk]*capFlow{}
	var seq uint32
	flush := func(cf *capFlow) {
		if cf.builder.Packets() == 0 {
			return
		}
		raw, m, err := cf.builder.Encode(enc, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf.blocks = append(cf.blocks, storage.Block{Meta: m, Encoded: raw})
		m.Seq++
		cf.builder.Reset(m)
	}
	var p decode.Packet
	for i, pk := range pkts {
		data, ci := pk.Data, pk.Info
		decode.Decode(decode.LinkType(link), data, &p)
		if !p.HasTuple {
			continue
		}
		c.packets++
		ts := ci.Timestamp
		if c.first.IsZero() {
			c.first = ts
		}
		c.last = ts
		sensor := sensors[i%len(sensors)]
		key, fwd := p.Tuple.Key()
		if _, ok := c.keys[key]; !ok {
			c.keys[key] = p.Tuple
		}
		cf := byKey[fk{sensor, key}]
		if cf == nil {
			seq++
			cf = &capFlow{sensor: sensor}
			cf.rec = flow.Record{
				ID: flow.NewID(ts, flow.SensorHash(sensor), seq), SensorID: sensor, Interface: "eth0",
				CommunityID: flow.CommunityID(0, p.Tuple), Tuple: p.Tuple, Start: ts, Reason: flow.ReasonEndOfCapture,
			}
			cf.builder.Reset(block.Meta{Key: key, FlowID: cf.rec.ID, CommunityID: cf.rec.CommunityID,
				SensorID: sensor, Interface: "eth0", LinkType: link})
			byKey[fk{sensor, key}] = cf
			c.flows = append(c.flows, cf)
		}
		_, recFwd := cf.rec.Tuple.Key()
		d := &cf.rec.Source
		if fwd != recFwd {
			d = &cf.rec.Destination
		}
		if d.First.IsZero() {
			d.First = ts
		}
		d.Last = ts
		d.Packets++
		d.Bytes += uint64(ci.Length)
		d.StoredPackets++
		d.StoredBytes += uint64(len(data))
		cf.rec.End = ts
		cf.builder.Append(ts.UnixNano(), ci.Length, data)
		if cf.builder.Packets() >= perBlock {
			flush(cf)
		}
	}
	for _, cf := range c.flows {
		flush(cf)
	}
	return c
}

// batches returns one batch per sensor. withBlocks false leaves the
// blocks out (records only), as when the sensor has not flushed them.
func (c *capture) batches(withBlocks bool) []*storage.Batch {
	by := map[string]*storage.Batch{}
	var out []*storage.Batch
	for _, cf := range c.flows {
		b := by[cf.sensor]
		if b == nil {
			b = &storage.Batch{SensorID: cf.sensor, Seq: 1}
			by[cf.sensor] = b
			out = append(out, b)
		}
		b.Records = append(b.Records, cf.rec)
		if withBlocks {
			b.Blocks = append(b.Blocks, cf.blocks...)
		}
	}
	return out
}

func openStore(t testing.TB) *pebble.Store {
	t.Helper()
	cfg := pebble.DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes = 8 << 20
	cfg.MemTableBytes = 4 << 20
	st, err := pebble.Open(t.TempDir(), cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func writeBatches(t testing.TB, st storage.Writer, bs []*storage.Batch) {
	t.Helper()
	for _, b := range bs {
		if _, err := st.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// Test tokens.
const (
	tokAlice = "alice-secret-token" // pcap:read, flows:read
	tokBob   = "bob-secret-token"   // flows:read only
	tokRoot  = "root-secret-token"  // admin
)

type testServer struct {
	*Server
	base      string
	auditPath string
	reg       *prometheus.Registry
}

// startServer starts an insecure API on a loopback port over st, with
// the clock at now.
func startServer(t testing.TB, st storage.Reader, now time.Time, mod func(*Config)) *testServer {
	t.Helper()
	return startServerDeps(t, Dependencies{Store: st, Now: func() time.Time { return now }}, mod)
}

// startServerDeps is startServer with the dependencies given (a metrics
// registry is added).
func startServerDeps(t testing.TB, deps Dependencies, mod func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	tokens := "" +
		HashToken(tokAlice) + ": {subject: alice, roles: [pcap:read, flows:read]}\n" +
		HashToken(tokBob) + ": {subject: bob, roles: [flows:read]}\n" +
		HashToken(tokRoot) + ": {subject: root, roles: [admin]}\n"
	tf := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tf, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.Insecure = true
	cfg.TokensFile = tf
	cfg.AuditFile = filepath.Join(dir, "audit.jsonl")
	cfg.AuditSync = false
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	deps.Registerer = reg
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop api server: %v", err)
		}
	})
	return &testServer{Server: s, base: "http://" + s.Addr(), auditPath: cfg.AuditFile, reg: reg}
}

func (ts *testServer) get(t testing.TB, token, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// tcpdumpText is the oracle's view of a capture: tcpdump's decode with
// microsecond timestamps and every frame byte in hex.
func tcpdumpText(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tcpdump"), "-r", path, "-nn", "-tt", "-xx",
		"--time-stamp-precision=micro").Output()
	if err != nil {
		t.Fatalf("tcpdump %s: %v", path, err)
	}
	return string(out)
}

// tsharkSelect writes the packets of the original capture that tshark
// selects for the flow's 5-tuple (ICMP errors quoting it excluded).
func tsharkSelect(t testing.TB, orig string, tu flow.Tuple, out string) {
	t.Helper()
	ip := "ip.addr"
	if tu.Family == flow.FamilyIPv6 {
		ip = "ipv6.addr"
	}
	pn := flow.ProtoName(tu.Proto)
	a, b := tu.Src.Netip(tu.Family), tu.Dst.Netip(tu.Family)
	filter := ip + "==" + a.String() + " && " + ip + "==" + b.String() +
		" && " + pn + ".port==" + itoa(tu.SrcPort) + " && " + pn + ".port==" + itoa(tu.DstPort) +
		" && !icmp && !icmpv6"
	cmd := exec.Command(testenv.Tool(t, "tshark"), "-r", orig, "-Y", filter, "-F", "pcap", "-w", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", filter, err, msg)
	}
}

func itoa(v uint16) string { return strconv.Itoa(int(v)) }

func execTool(t testing.TB, name string, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(testenv.Tool(t, name), args...).CombinedOutput()
}

// tsharkConversations returns the shared tshark-conversations.tsv row of
// a capture: column name -> count.
func tsharkConversations(t testing.TB, rel string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Pcaps(t), "tshark-conversations.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	cols := strings.Split(lines[0], "\t")
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if f[0] != rel {
			continue
		}
		out := map[string]int{}
		for i := 1; i < len(f) && i < len(cols); i++ {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("tsv %s: %v", rel, err)
			}
			out[cols[i]] = n
		}
		return out
	}
	t.Fatalf("%s not in tshark-conversations.tsv", rel)
	return nil
}
