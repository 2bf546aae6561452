package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// echoWindow holds every packet of echo-connections.pcap.gz
// (2021-07-25 14:57:00..07 UTC).
const echoWindow = "after 1627224000 and before 1627226000"

// streamTwice streams file from sensors s1 and s2 (so that every
// Community ID names two sensors' flows) and returns the records.
func streamTwice(t *testing.T, col *collector, work, file string, extra ...string) []ecsFlow {
	t.Helper()
	for _, id := range []string{"s1", "s2"} {
		args := append(append([]string{"-r", file}, extra...), col.sensorArgs(id, filepath.Join(work, "spool-"+id))...)
		mustRun(t, 120*time.Second, bin.sensor, append(args, longTimeouts...)...)
	}
	recs := col.flows(t, echoWindow)
	if len(recs) < 100 {
		t.Fatalf("only %d records stored", len(recs))
	}
	return recs
}

// flipMiddle flips one bit in the middle of the largest file matching
// pattern in dir and returns its name.
func flipMiddle(t *testing.T, dir, pattern string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, pattern))
	var big string
	var size int64
	for _, n := range names {
		if st, err := os.Stat(n); err == nil && st.Size() > size {
			big, size = n, st.Size()
		}
	}
	if size < 4096 {
		t.Fatalf("no %s file of some size in %s: %v", pattern, dir, names)
	}
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(big, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return big
}

// pcapPackets counts the packets of a classic pcap file.
func pcapPackets(b []byte) (int, error) {
	if len(b) < 24 {
		return 0, fmt.Errorf("pcap of %d bytes", len(b))
	}
	n := 0
	for off := 24; off < len(b); n++ {
		if off+16 > len(b) {
			return n, fmt.Errorf("truncated record header at %d", off)
		}
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
	}
	return n, nil
}

// pull fetches a pcap by flow ID or Community ID with the API token and
// returns the status, the error code of a JSON error, the packets of a
// pcap and its X-Tapir-Complete trailer.
func (c *collector) pull(t *testing.T, cl *http.Client, id string) (status int, code string, packets int, complete string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://"+c.api+"/api/v1/pcap?flow="+url.QueryEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var e struct{ Code string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, e.Code, 0, ""
	}
	n, err := pcapPackets(body)
	if err != nil {
		t.Errorf("%s: %v", id, err)
	}
	return 200, "", n, resp.Trailer.Get("X-Tapir-Complete")
}

// verify runs tapir-collector verify on the stopped collector's store and
// returns its output and exit code.
func (c *collector) verify(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(bin.collector, "verify", "--config", c.configPath)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestSSTableCorruptionSurfaces flips one byte in the middle of the
// largest sstable the real collector wrote from two sensors' copies of a
// shared capture, and pulls every flow by flow ID and by Community ID:
// each answer is either every stored packet or 500 "corrupt", never a
// false 404 not_flushed nor a 200 that says complete with packets
// missing; the corruption is counted and logged at error level.
// tapir-collector verify finds the damaged file before any retrieval.
func TestSSTableCorruptionSurfaces(t *testing.T) {
	needBinaries(t)
	file := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "s1", "s2")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	recs := streamTwice(t, col, work, file)
	stored := map[string]int{} // flow ID or Community ID -> stored packets
	for _, r := range recs {
		n := int(r.Tapir.Source.StoredPackets + r.Tapir.Destination.StoredPackets)
		stored[r.Tapir.FlowID] = n
		if r.Network.CommunityID != "" {
			stored[r.Network.CommunityID] += n
		}
	}
	// Restart once so that Pebble flushes the replayed log to an sstable.
	col.proc.Stop(30 * time.Second)
	col.start()
	col.proc.Stop(30 * time.Second)
	if out, code := col.verify(t); code != 0 || !strings.Contains(out, "store ok") {
		t.Errorf("verify of an intact store: exit %d:\n%s", code, out)
	}
	sst := flipMiddle(t, col.store, "*.sst")
	if out, code := col.verify(t); code != 65 || !strings.Contains(out, filepath.Base(sst)) || !strings.Contains(out, "DAMAGED") {
		t.Errorf("verify after flipping a byte of %s: exit %d, want 65 naming the file:\n%s", filepath.Base(sst), code, out)
	}
	col.start()

	cl := apiClient(t, p, "127.0.0.1")
	answers := map[string]int{}
	for id, want := range stored {
		status, code, got, complete := col.pull(t, cl, id)
		switch {
		case status == 200 && got == want && complete == "true":
			answers["whole"]++
		case status == 500 && code == "corrupt":
			answers["corrupt"]++
		default:
			answers["wrong"]++
			t.Errorf("%s: status %d code %q, %d packets of %d, complete %q: neither whole nor 500 corrupt", id, status, code, got, want, complete)
		}
	}
	t.Logf("flipped a byte in %s; %d pulls: %v", filepath.Base(sst), len(stored), answers)
	if answers["corrupt"] == 0 {
		t.Errorf("no pull met the corruption")
	}
	if n := col.metric(t, "tapir_store_corruption_total", `where="read"`); n == 0 {
		t.Errorf("tapir_store_corruption_total{where=read} is 0")
	}
	if log := col.proc.Log.String(); !strings.Contains(log, `level=ERROR msg="store corruption`) {
		t.Errorf("no error-level log line about the corruption:\n%s", e2etest.LastLines(log, 10))
	}
}

// TestWALCorruptionRefusedThenSalvaged flips one byte in the middle of the
// real collector's write-ahead log (batches it acknowledged): the
// collector refuses to start (exit 65) naming the file and the damage
// instead of replaying up to it and silently dropping the rest; with
// --salvage-wal it starts, keeps every intact batch (all flows but those
// of the damaged batch are stored whole) and logs what was lost.
func TestWALCorruptionRefusedThenSalvaged(t *testing.T) {
	needBinaries(t)
	file := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "s1", "s2")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	cfg := filepath.Join(work, "sensor.yaml")
	if err := os.WriteFile(cfg, []byte(smallBatches), 0o600); err != nil {
		t.Fatal(err)
	}
	recs := streamTwice(t, col, work, file, "--config", cfg)
	col.proc.Stop(30 * time.Second) // the memtable is not flushed: the batches live in the log
	wal := flipMiddle(t, col.store, "*.log")

	pr := col.startEdited(func(s string) string { return s })
	code, exited := pr.Wait(60 * time.Second)
	log := pr.Log.String()
	if !exited || code != 65 {
		t.Fatalf("start on a damaged log: exited %v code %d, want 65:\n%s", exited, code, e2etest.LastLines(log, 10))
	}
	if !strings.Contains(log, filepath.Base(wal)) || !strings.Contains(log, "--salvage-wal") || !strings.Contains(log, "bytes ") {
		t.Errorf("the refusal does not name the log, the damaged bytes and --salvage-wal:\n%s", e2etest.LastLines(log, 6))
	}

	if pr := col.startEdited(func(s string) string { return s }, "--salvage-wal"); col.proc != pr {
		t.Fatalf("collector did not start with --salvage-wal:\n%s", pr.Log.String())
	}
	log = col.proc.Log.String()
	if !strings.Contains(log, `level=ERROR msg="write-ahead log damaged: salvaged`) || !strings.Contains(log, "keys lost") {
		t.Errorf("salvage does not report what was lost:\n%s", e2etest.LastLines(log, 10))
	}
	if copies, _ := filepath.Glob(filepath.Join(col.store, "damaged-wal", "*")); len(copies) != 1 {
		t.Errorf("copy of the damaged log: %v", copies)
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "salvaged") {
			t.Log(l)
		}
	}
	after := col.flows(t, echoWindow)
	t.Logf("%d records before, %d after salvage", len(recs), len(after))
	if len(after) < len(recs)*9/10 || len(after) > len(recs) {
		t.Errorf("%d records after salvage of %d: the intact batches after the damage were not kept", len(after), len(recs))
	}
}
