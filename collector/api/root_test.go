package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.CertRoles = map[string][]string{"x": {"root"}}
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("unknown role validated: %v", err)
	}
	c = DefaultConfig()
	c.AuditFile = ""
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing audit file validated: %v", err)
	}
}

// setup loads a shared capture into a fresh Pebble store, split between
// the given sensors, and starts an API over it with the clock one minute
// after the capture's last packet.
func setup(t *testing.T, rel string, sensors []string, mod func(*Config)) (*capture, *testServer, storage.BlockStore) {
	t.Helper()
	path := testenv.Plain(t, testenv.Pcap(t, rel))
	c := loadCapture(t, path, sensors, 3)
	st := openStore(t)
	writeBatches(t, st, c.batches(true))
	return c, startServer(t, st, c.last.Add(time.Minute), mod), st
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAudit(t *testing.T, path string) []AuditEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []AuditEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// packetChunks splits tcpdump -x text into one chunk per packet.
func packetChunks(s string) []string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "\t") && len(out) > 0 {
			out[len(out)-1] += l
		} else {
			out = append(out, l)
		}
	}
	return out
}

// samePackets compares the answer's decode with the oracle's. The answer
// is merged in timestamp order, so when the original capture itself is
// not in timestamp order, both are compared after a stable sort by
// timestamp (seconds have the same number of digits in these captures).
func samePackets(t *testing.T, got, want string) bool {
	if got == want {
		return true
	}
	w := packetChunks(want)
	ts := func(c string) string { return strings.Fields(c)[0] }
	if slices.IsSortedFunc(w, func(a, b string) int { return strings.Compare(ts(a), ts(b)) }) {
		return false
	}
	g := packetChunks(got)
	cmpTS := func(a, b string) int { return strings.Compare(ts(a), ts(b)) }
	slices.SortStableFunc(w, cmpTS)
	slices.SortStableFunc(g, cmpTS)
	if slices.Equal(g, w) {
		t.Logf("original capture is not in timestamp order; answer matches it sorted by time")
		return true
	}
	return false
}

func countLines(s string, prefix string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestPcapMatchesTshark fetches every TCP and UDP flow of several shared
// captures by Community ID, each capture split between two sensors, and
// compares the answer with the packets tshark selects from the original
// capture for the flow's 5-tuple: tcpdump's full hex decode of both must
// be identical (same packets, bytes, timestamps and order).
func TestPcapMatchesTshark(t *testing.T) {
	for _, rel := range []string{
		"zeek/get.pcap",
		"zeek/wikipedia.pcap",
		"community-id-spec/tcp.pcap",
		"community-id-spec/udp.pcap",
		"community-id-spec/ipv6.pcap",
		"suricata-verify/community-id-ipv6/input.pcap",
		"suricata-verify/community-id-sameip/input.pcap",
	} {
		t.Run(rel, func(t *testing.T) {
			c, ts, _ := setup(t, rel, []string{"s1", "s2"}, nil)
			n := 0
			for key, tu := range c.keys {
				if key.Proto != flow.ProtoTCP && key.Proto != flow.ProtoUDP {
					continue
				}
				n++
				cid := flow.CommunityID(0, tu)
				sel := filepath.Join(t.TempDir(), "sel.pcap")
				tsharkSelect(t, c.path, tu, sel)
				want := tcpdumpText(t, sel)
				if want == "" {
					t.Fatalf("%s: tshark selected nothing", tu)
				}
				for _, format := range []string{"pcap", "pcapng"} {
					resp, body := ts.get(t, tokAlice, "/api/v1/pcap?format="+format+"&flow="+url.QueryEscape(cid))
					if resp.StatusCode != 200 {
						t.Fatalf("%s %s: status %d: %s", tu, format, resp.StatusCode, body)
					}
					if resp.Trailer.Get("X-Tapir-Complete") != "true" {
						t.Errorf("%s: trailer %v", tu, resp.Trailer)
					}
					got := tcpdumpText(t, writeTemp(t, "got."+format, body))
					if !samePackets(t, got, want) {
						t.Fatalf("%s %s: answer differs from tshark's selection\n--- got\n%s\n--- want\n%s", tu, format, got, want)
					}
					if p := resp.Trailer.Get("X-Tapir-Packets"); p != strconv.Itoa(countLines(want, "\t")) {
						t.Errorf("%s: X-Tapir-Packets %s, tshark selected %d", tu, p, countLines(want, "\t"))
					}
				}
			}
			if n == 0 {
				t.Fatal("no TCP or UDP flow in capture")
			}
		})
	}
}

// TestPcapByZeekCommunityID fetches get.pcap's connection by the Community
// ID Zeek logged for it (its baseline), and by the flow ID of one sensor's
// instance.
func TestPcapByZeekCommunityID(t *testing.T) {
	base, err := os.ReadFile(testenv.Pcap(t, "zeek/scripts.policy.protocols.conn.community-id-logging.conn.log.cut"))
	if err != nil {
		t.Fatal(err)
	}
	var cid string
	for _, f := range strings.Fields(string(base)) {
		if strings.HasPrefix(f, "1:") {
			cid = f
		}
	}
	if cid == "" {
		t.Fatal("no community id in zeek baseline")
	}
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1", "s2"}, nil)
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(cid))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := countLines(tcpdumpText(t, writeTemp(t, "a.pcap", body)), "\t"), 14; got != want {
		// capinfos: get.pcap holds 14 packets, all of this connection.
		t.Fatalf("%d packets, want %d", got, want)
	}
	// By flow ID: only that sensor's instance.
	for _, cf := range c.flows {
		resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cf.rec.ID.String())
		if resp.StatusCode != 200 {
			t.Fatalf("flow id %s: status %d: %s", cf.rec.ID, resp.StatusCode, body)
		}
		want := cf.rec.Source.StoredPackets + cf.rec.Destination.StoredPackets
		if got := countLines(tcpdumpText(t, writeTemp(t, "b.pcap", body)), "\t"); uint64(got) != want {
			t.Fatalf("flow id %s (%s): %d packets, want %d", cf.rec.ID, cf.sensor, got, want)
		}
	}
}

func TestAuthAndAudit(t *testing.T) {
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1"}, nil)
	cid := c.flows[0].rec.CommunityID
	path := "/api/v1/pcap?flow=" + url.QueryEscape(cid)
	cases := []struct {
		name, token, path string
		auth              string // raw Authorization header, overrides token
		status            int
		subject           string
		audited           bool
	}{
		{name: "no token", path: path, status: 401, audited: true},
		{name: "unknown token", token: "nope", path: path, status: 401, audited: true},
		{name: "basic auth", auth: "Basic YWxpY2U6eA==", path: path, status: 401, audited: true},
		{name: "bob lacks pcap:read", token: tokBob, path: path, status: 403, subject: "bob", audited: true},
		{name: "alice", token: tokAlice, path: path, status: 200, subject: "alice", audited: true},
		{name: "admin", token: tokRoot, path: path, status: 200, subject: "root", audited: true},
		{name: "bob flows", token: tokBob, path: "/api/v1/flows", status: 200, subject: "bob", audited: true},
		{name: "bob sensors", token: tokBob, path: "/api/v1/sensors", status: 200},
		{name: "sensors no token", path: "/api/v1/sensors", status: 401},
	}
	for _, tc := range cases {
		before := len(readAudit(t, ts.auditPath))
		req, _ := http.NewRequest("GET", ts.base+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		} else if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: read body: %v", tc.name, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, body.String())
			continue
		}
		if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		entries := readAudit(t, ts.auditPath)
		if !tc.audited {
			if len(entries) != before {
				t.Errorf("%s: audited", tc.name)
			}
			continue
		}
		if len(entries) != before+1 {
			t.Fatalf("%s: %d audit entries, want %d", tc.name, len(entries), before+1)
		}
		e := entries[len(entries)-1]
		if e.Status != tc.status || e.Subject != tc.subject || e.Remote == "" || e.Bytes != int64(body.Len()) {
			t.Errorf("%s: audit %+v; want status %d subject %q bytes %d", tc.name, e, tc.status, tc.subject, body.Len())
		}
		if strings.HasPrefix(tc.path, "/api/v1/pcap") {
			if e.Flow != cid || e.Endpoint != "pcap" {
				t.Errorf("%s: audit flow %q endpoint %q", tc.name, e.Flow, e.Endpoint)
			}
			if tc.status == 200 {
				// Packets sent: what tshark selects (all 14 packets of get.pcap).
				sel := filepath.Join(t.TempDir(), "sel.pcap")
				tsharkSelect(t, c.path, c.flows[0].rec.Tuple, sel)
				if want := countLines(tcpdumpText(t, sel), "\t"); e.Packets != int64(want) {
					t.Errorf("%s: audit packets %d, tshark selects %d", tc.name, e.Packets, want)
				}
			}
		}
	}
	if got := counterValue(t, ts.m.auditErrors); got != 0 {
		t.Errorf("audit errors %v", got)
	}
	// A failing audit log is counted, not silently dropped.
	ts.audit.Close()
	ts.get(t, tokAlice, path)
	if got := counterValue(t, ts.m.auditErrors); got != 1 {
		t.Errorf("audit errors after close: %v, want 1", got)
	}
	if got := counterValue(t, ts.m.requests.WithLabelValues("pcap", "401")); got != 3 {
		t.Errorf("tapir_api_requests_total{pcap,401} = %v, want 3", got)
	}
}

func errorCode(t *testing.T, body []byte) (code, msg string) {
	t.Helper()
	var e struct{ Code, Error string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code, e.Error
}

func TestFlowStates(t *testing.T) {
	c, ts, st := setup(t, "zeek/get.pcap", []string{"s1"}, nil)
	cid := url.QueryEscape(c.flows[0].rec.CommunityID)

	// Unknown: the Community ID of a tuple that is not in the capture.
	other := c.flows[0].rec.Tuple
	other.SrcPort++
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(flow.CommunityID(0, other)))
	if code, msg := errorCode(t, body); resp.StatusCode != 404 || code != "flow_unknown" || msg != "flow unknown" {
		t.Errorf("unknown flow: %d %s %s", resp.StatusCode, code, msg)
	}
	// Bad parameters.
	for _, q := range []string{"", "flow=xyz", "flow=" + cid + "&query=tcp", "flow=" + cid + "&format=erf",
		"flow=" + cid + "&max_packets=0", "flow=" + cid + "&from=yesterday", "query=host+1.2.3"} {
		if resp, body := ts.get(t, tokAlice, "/api/v1/pcap?"+q); resp.StatusCode != 400 {
			t.Errorf("%q: status %d: %s", q, resp.StatusCode, body)
		}
	}
	// A window that misses the flow.
	resp, body = ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid+"&to="+strconv.FormatInt(c.first.Add(-time.Hour).Unix(), 10))
	if resp.StatusCode != 404 {
		t.Errorf("window before the flow: %d %s", resp.StatusCode, body)
	}
	// Expired: retention removed every block.
	if _, err := st.Expire(context.Background(), c.last.Add(24*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	resp, body = ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid)
	if code, msg := errorCode(t, body); resp.StatusCode != 410 || code != "packets_expired" || msg != "packets expired" {
		t.Errorf("expired: %d %s %s", resp.StatusCode, code, msg)
	}
	entries := readAudit(t, ts.auditPath)
	if e := entries[len(entries)-1]; e.Status != 410 || e.Subject != "alice" {
		t.Errorf("audit of expired: %+v", e)
	}
}

func TestNotFlushed(t *testing.T) {
	path := testenv.Pcap(t, "zeek/get.pcap")
	c := loadCapture(t, path, []string{"s1"}, 3)
	st := openStore(t)
	writeBatches(t, st, c.batches(false)) // records only
	ts := startServer(t, st, c.last.Add(time.Minute), func(cfg *Config) { cfg.NotFlushedRetry = 7 * time.Second })
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(c.flows[0].rec.CommunityID))
	code, _ := errorCode(t, body)
	if resp.StatusCode == 404 && code == "flow_unknown" {
		t.Skip("this store does not index flows from records alone")
	}
	if resp.StatusCode != 404 || code != "not_flushed" || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("records without blocks: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

func TestCaps(t *testing.T) {
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1", "s2"}, func(cfg *Config) { cfg.MaxPackets = 10 })
	tu := c.flows[0].rec.Tuple
	cid := url.QueryEscape(flow.CommunityID(0, tu))
	sel := filepath.Join(t.TempDir(), "sel.pcap")
	tsharkSelect(t, c.path, tu, sel)
	want := tcpdumpText(t, sel) // 14 packets, above the server cap of 10
	for _, q := range []string{"", "&max_packets=4", "&max_bytes=1000", "&max_packets=99"} {
		resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid+q)
		if code, _ := errorCode(t, body); resp.StatusCode != 413 || code != "cap_exceeded" {
			t.Errorf("%q: %d %s", q, resp.StatusCode, body)
		}
	}
	for _, tc := range []struct {
		q       string
		packets int
	}{{"&truncate=1", 10}, {"&truncate=1&max_packets=4", 4}, {"&truncate=true&max_packets=1", 1}} {
		resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid+tc.q)
		if resp.StatusCode != 200 || resp.Header.Get("X-Tapir-Truncated") != "true" ||
			resp.Trailer.Get("X-Tapir-Complete") != "false" || resp.Trailer.Get("X-Tapir-Packets") != strconv.Itoa(tc.packets) {
			t.Errorf("%q: %d header %v trailer %v", tc.q, resp.StatusCode, resp.Header, resp.Trailer)
			continue
		}
		got := tcpdumpText(t, writeTemp(t, "t.pcap", body))
		// The first packets of tshark's selection, in order.
		if !strings.HasPrefix(want, got) || countLines(got, "\t") != tc.packets {
			t.Errorf("%q: truncated answer is not a prefix of %d packets:\n%s", tc.q, tc.packets, got)
		}
		e := readAudit(t, ts.auditPath)
		if last := e[len(e)-1]; !last.Truncated || last.Packets != int64(tc.packets) || last.Bytes != int64(len(body)) {
			t.Errorf("%q: audit %+v", tc.q, last)
		}
	}
	// The byte cap counts captured bytes.
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?truncate=1&flow="+cid+"&max_bytes=200")
	if b, _ := strconv.Atoi(resp.Trailer.Get("X-Tapir-Bytes")); resp.StatusCode != 200 || b > 200 || b == 0 {
		t.Errorf("byte cap: %d %v %s", resp.StatusCode, resp.Trailer, body)
	}
}

func TestPcapQuery(t *testing.T) {
	c, ts, _ := setup(t, "zeek/wikipedia.pcap", []string{"s1", "s2"}, func(cfg *Config) {
		cfg.Query.MaxWindow = 0
	})
	after := "after+" + strconv.FormatInt(c.first.Add(-time.Second).Unix(), 10)
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?query=udp+and+port+53+and+"+after)
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d %s", resp.StatusCode, body)
	}
	got := tcpdumpText(t, writeTemp(t, "q.pcap", body))
	sel := filepath.Join(t.TempDir(), "sel.pcap")
	cmd := []string{"-r", c.path, "-Y", "udp.port==53 && !icmp && !icmpv6", "-F", "pcap", "-w", sel}
	if out, err := execTool(t, "tshark", cmd...); err != nil {
		t.Fatalf("tshark: %v %s", err, out)
	}
	want := tcpdumpText(t, sel)
	if want == "" || got != want {
		t.Fatalf("query answer differs from tshark's udp.port==53\n--- got\n%s\n--- want\n%s", got, want)
	}
	// Flows cap.
	resp, body = ts.get(t, tokAlice, "/api/v1/pcap?max_flows=1&query=udp+and+"+after)
	if code, _ := errorCode(t, body); resp.StatusCode != 413 || code != "cap_exceeded" {
		t.Errorf("max_flows: %d %s", resp.StatusCode, body)
	}
	resp, _ = ts.get(t, tokAlice, "/api/v1/pcap?max_flows=1&truncate=1&query=udp+and+"+after)
	if resp.StatusCode != 200 || resp.Header.Get("X-Tapir-Flows") != "1" || resp.Header.Get("X-Tapir-Truncated") != "true" {
		t.Errorf("max_flows truncate: %d %v", resp.StatusCode, resp.Header)
	}
	// Too costly: a window over the limit.
	ts2 := startServer(t, ts.deps.Store, c.last, nil)
	resp, body = ts2.get(t, tokAlice, "/api/v1/pcap?query=after+30d+ago")
	if code, _ := errorCode(t, body); resp.StatusCode != 422 || code != "query_too_costly" {
		t.Errorf("long window: %d %s", resp.StatusCode, body)
	}
}

// TestFlows lists wikipedia.pcap's flow records (one sensor) and checks
// the TCP and UDP counts against tshark's conversation counts.
func TestFlows(t *testing.T) {
	rel := "zeek/wikipedia.pcap"
	_, ts, _ := setup(t, rel, []string{"s1"}, func(cfg *Config) { cfg.Query.MaxWindow = 0 })
	conv := tsharkConversations(t, rel)
	for proto, want := range map[string]int{"tcp": conv["tcp_conv"], "udp": conv["udp_conv"]} {
		resp, body := ts.get(t, tokBob, "/api/v1/flows?query="+proto+"+and+after+1d+ago")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%s: %d %s", proto, resp.StatusCode, body)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var doc struct {
				Network struct {
					Transport   string `json:"transport"`
					CommunityID string `json:"community_id"`
				} `json:"network"`
			}
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if doc.Network.Transport != proto || !strings.HasPrefix(doc.Network.CommunityID, "1:") {
				t.Errorf("%s: record %s", proto, sc.Text())
			}
			n++
		}
		if n != want {
			t.Errorf("%s: %d records, tshark counts %d conversations", proto, n, want)
		}
		if resp.Trailer.Get("X-Tapir-More") != "false" {
			t.Errorf("%s: X-Tapir-More %q", proto, resp.Trailer.Get("X-Tapir-More"))
		}
	}
	resp, body := ts.get(t, tokBob, "/api/v1/flows?limit=3&query=udp+and+after+1d+ago")
	if n := bytes.Count(body, []byte("\n")); resp.StatusCode != 200 || n != 3 || resp.Trailer.Get("X-Tapir-More") != "true" {
		t.Errorf("limit 3: %d, %d lines, trailer %v", resp.StatusCode, n, resp.Trailer)
	}
	e := readAudit(t, ts.auditPath)
	if last := e[len(e)-1]; last.Endpoint != "flows" || last.Flows != 3 || last.Subject != "bob" {
		t.Errorf("flows audit %+v", last)
	}
}

// blockingStore blocks LookupFlow until release is closed or the
// request's context ends.
type blockingStore struct {
	storage.Reader
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingStore) LookupFlow(ctx context.Context, id string, from, to time.Time) ([]storage.FlowRef, error) {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Reader.LookupFlow(ctx, id, from, to)
}

func TestBusyAndTimeout(t *testing.T) {
	path := testenv.Pcap(t, "zeek/get.pcap")
	c := loadCapture(t, path, []string{"s1"}, 3)
	st := openStore(t)
	writeBatches(t, st, c.batches(true))
	bst := &blockingStore{Reader: st, entered: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, bst, c.last, func(cfg *Config) { cfg.MaxConcurrent = 1 })
	p := "/api/v1/pcap?flow=" + url.QueryEscape(c.flows[0].rec.CommunityID)
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", ts.base+p, nil)
		req.Header.Set("Authorization", "Bearer "+tokAlice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-bst.entered
	resp, body := ts.get(t, tokAlice, p)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second retrieval: %d %s", resp.StatusCode, body)
	}
	close(bst.release)
	if code := <-done; code != 200 {
		t.Errorf("first retrieval: %d", code)
	}

	bst2 := &blockingStore{Reader: st, entered: make(chan struct{}), release: make(chan struct{})}
	ts2 := startServer(t, bst2, c.last, func(cfg *Config) { cfg.RequestTimeout = 100 * time.Millisecond })
	resp, body = ts2.get(t, tokAlice, p)
	if code, _ := errorCode(t, body); resp.StatusCode != 504 || code != "timeout" {
		t.Errorf("timeout: %d %s", resp.StatusCode, body)
	}
}

func TestTokensFile(t *testing.T) {
	good := HashToken("x") + ": {subject: a, roles: [pcap:read]}\n"
	tk, err := ParseTokens([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := tk.Lookup("x"); !ok || e.Subject != "a" {
		t.Errorf("lookup x: %v %v", e, ok)
	}
	if _, ok := tk.Lookup("y"); ok {
		t.Error("lookup y matched")
	}
	if _, ok := tk.Lookup(""); ok {
		t.Error("empty token matched")
	}
	for _, bad := range []string{
		"abc: {subject: a, roles: []}\n",
		HashToken("x") + ": {subject: '', roles: []}\n",
		HashToken("x") + ": {subject: a, roles: [root]}\n",
		HashToken("x") + ": {subject: a, role: [admin]}\n",
	} {
		if _, err := ParseTokens([]byte(bad)); !errors.Is(err, ErrTokensFile) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if tk, err := ParseTokens(nil); err != nil || len(tk.recs) != 0 {
		t.Errorf("empty file: %v", err)
	}
}

func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
