package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// apiClient is an HTTPS client for the collector's API that trusts the
// test CA and connects from the loopback address src (127.0.0.x).
func apiClient(t *testing.T, p *pki, src string) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(p.ca())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

// auditLine is the part of an audit entry the test reads.
type auditLine struct {
	Endpoint          string `json:"endpoint"`
	Remote            string `json:"remote"`
	Status            int    `json:"status"`
	Query             string `json:"query"`
	QueryLen          int    `json:"query_len"`
	QuerySHA256       string `json:"query_sha256"`
	SuppressedDenials int64  `json:"suppressed_denials"`
}

// readAuditDir reads every audit file (current and rotated) and returns
// the entries, the total size and the largest line.
func readAuditDir(t *testing.T, dir string) (entries []auditLine, total int64, longest int) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "audit.jsonl*"))
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		total += st.Size()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for sc.Scan() {
			longest = max(longest, len(sc.Bytes()))
			var e auditLine
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: audit line %.200q: %v", name, sc.Text(), err)
			}
			entries = append(entries, e)
		}
		f.Close()
	}
	return entries, total, longest
}

// TestAuditFloodBounded floods the real collector with unauthenticated
// pcap requests carrying a 200 KB query from 200 loopback sources (so
// that the per-source limit alone cannot bound it): the audit files stay
// under (keep+1) x max_bytes, every line is small, cut queries carry the
// SHA-256 prefix of what was sent, sources past their burst are answered
// 429 and counted, and the process log never holds the query.
func TestAuditFloodBounded(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"))
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	const maxBytes, keep = 65536, 3
	if pr := col.startEdited(withAPI(fmt.Sprintf("  audit: {max_bytes: %d, keep: %d, denied_rate: 0.5, denied_burst: 5}\n", maxBytes, keep))); col.proc != pr {
		t.Fatalf("collector did not start:\n%s", pr.Log.String())
	}
	marker := "FLOODMARKER" + strings.Repeat("q", 200<<10)
	sum := sha256.Sum256([]byte(marker))
	wantSum := hex.EncodeToString(sum[:8])
	target := "https://" + col.api + "/api/v1/pcap?query=" + url.QueryEscape(marker)

	const sources, perSource = 200, 12
	var codes sync.Map
	var sent atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	start := time.Now()
	for i := 0; i < sources; i++ {
		wg.Add(1)
		go func(src string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cl := apiClient(t, p, src)
			for j := 0; j < perSource; j++ {
				resp, err := cl.Get(target)
				if err != nil {
					t.Errorf("%s: %v", src, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				sent.Add(1)
			}
		}(fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250))
	}
	wg.Wait()
	count := func(code int) int64 {
		if n, ok := codes.Load(code); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	t.Logf("%d requests (%d x 200 KB) in %v: %d answered 401, %d answered 429", sent.Load(), sent.Load(),
		time.Since(start).Round(time.Millisecond), count(401), count(429))
	if count(401)+count(429) != sent.Load() {
		t.Errorf("answers other than 401 and 429 to unauthenticated requests")
	}
	if count(429) == 0 {
		t.Errorf("no request was rate limited (429)")
	}
	if got := col.metric(t, "tapir_api_denied_rate_limited_total", ""); got != float64(count(429)) {
		t.Errorf("tapir_api_denied_rate_limited_total %v, want %d (the 429 answers)", got, count(429))
	}

	entries, total, longest := readAuditDir(t, col.dir)
	t.Logf("audit: %d entries, %d bytes in %d+1 files at most, longest line %d bytes", len(entries), total, keep, longest)
	if total > (keep+1)*maxBytes {
		t.Errorf("audit files hold %d bytes, more than (keep %d + 1) x max_bytes %d", total, keep, maxBytes)
	}
	if longest > 2048 {
		t.Errorf("an audit line of %d bytes: parameters are not cut", longest)
	}
	if rot := col.metric(t, "tapir_api_audit_rotations_total", ""); rot == 0 {
		t.Errorf("the audit log never rotated")
	}
	names, _ := filepath.Glob(filepath.Join(col.dir, "audit.jsonl.*"))
	if len(names) != keep {
		t.Errorf("rotated audit files %v, want %d", names, keep)
	}
	for _, e := range entries {
		if e.Endpoint == "pcap" && (e.QueryLen != len(marker) || e.QuerySHA256 != wantSum || !strings.HasPrefix(marker, strings.TrimSuffix(e.Query, "…"))) {
			t.Fatalf("audit entry query %.40q len %d sha256 %q; want a prefix of the query, len %d, sha256 prefix %s",
				e.Query, e.QueryLen, e.QuerySHA256, len(marker), wantSum)
		}
	}
	if strings.Contains(col.proc.Log.String(), "FLOODMARKER") {
		t.Errorf("the process log holds the flood's query")
	}

	// A limited source's next audited denial says how many were not
	// audited one by one.
	time.Sleep(2100 * time.Millisecond) // denied_rate 0.5/s: one token back
	resp, err := apiClient(t, p, "127.0.1.1").Get(target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	entries, _, _ = readAuditDir(t, col.dir)
	var last *auditLine
	for i := range entries {
		if strings.HasPrefix(entries[i].Remote, "127.0.1.1:") && entries[i].SuppressedDenials > 0 {
			last = &entries[i]
		}
	}
	if resp.StatusCode != 401 || last == nil || last.SuppressedDenials != perSource-5 {
		t.Errorf("after a pause: status %d, audited entry with suppressed_denials %+v; want 401 and %d suppressed",
			resp.StatusCode, last, perSource-5)
	}
}

// TestAuditFailsClosed puts the audit log on a small tmpfs, fills it,
// and checks that the real collector refuses pcap retrieval (503
// audit_unavailable) instead of serving it unaudited, and serves it
// again, audited, once space is freed.
func TestAuditFailsClosed(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	fs := mountTmpfs(t, "4m")
	p := newPKI(t, filepath.Join(work, "certs"), "demo-sensor")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.audit = filepath.Join(fs, "audit", "audit.jsonl")
	if pr := col.startEdited(withAPI("  audit: {min_free_bytes: 262144}\n")); col.proc != pr {
		t.Fatalf("collector did not start:\n%s", pr.Log.String())
	}
	file := testenv.Pcap(t, "zeek/get.pcap")
	mustRun(t, 60*time.Second, bin.sensor, append([]string{"-r", file}, col.sensorArgs("demo-sensor", filepath.Join(work, "spool"))...)...)
	recs := col.flows(t, "after 1362692500 and before 1362692600")
	if len(recs) != 1 {
		t.Fatalf("%d records from get.pcap, want 1", len(recs))
	}
	cid := recs[0].Network.CommunityID
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	filler := filepath.Join(fs, "filler")
	fill(t, filler, 1<<40)
	out := filepath.Join(work, "refused.pcap")
	stderr, err := col.pcap(ctx, cid, out)
	if err == nil || !strings.Contains(string(stderr), "503") || !strings.Contains(string(stderr), "audit_unavailable") {
		t.Errorf("pcap with a full audit file system: err %v, stderr %s; want 503 audit_unavailable", err, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a pcap was written while the audit log could not be")
	}
	if got := col.metric(t, "tapir_api_audit_unavailable_refusals_total", ""); got < 1 {
		t.Errorf("tapir_api_audit_unavailable_refusals_total %v", got)
	}

	os.Remove(filler)
	out = filepath.Join(work, "allowed.pcap")
	if _, err := col.pcap(ctx, cid, out); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	entries, _, _ := readAuditDir(t, filepath.Dir(col.audit))
	if len(entries) == 0 || entries[len(entries)-1].Status != 200 {
		t.Errorf("the served pcap is not the last audit entry: %+v", entries)
	}
}
