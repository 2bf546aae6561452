package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestSecurityBinaries checks, with the real binaries, that the collector
// refuses sensors with a certificate from another CA or with a sensor id
// that is not their certificate's, that the API refuses missing and wrong
// tokens with 401, and that the audit log records allowed retrievals with
// their byte counts.
func TestSecurityBinaries(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	file := testenv.Pcap(t, "zeek/get.pcap")
	p := newPKI(t, filepath.Join(work, "certs"), "demo-sensor")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	window := "after 1362692500 and before 1362692600" // get.pcap: 2013-03-07 21:42:06

	run := func(name, tlsDir, id string) string {
		args := []string{"-r", file, "--sensor-id", id, "--collector", col.ingest, "--tls-dir", tlsDir,
			"--spool-dir", filepath.Join(work, "spool-"+name), "--drain-timeout", "3s"}
		sp := startProc(t, append([]string{bin.sensor}, args...)...)
		sp.Wait(60 * time.Second)
		log := sp.Log.String()
		if !strings.Contains(log, "not acknowledged everything") {
			t.Errorf("%s: the sensor's data was acknowledged:\n%s", name, e2etest.LastLines(log, 8))
		}
		return log
	}

	t.Run("other CA", func(t *testing.T) {
		other := newPKI(t, filepath.Join(work, "other-ca"), "demo-sensor")
		before := col.proc.Log.String()
		run("other-ca", other.dir, "demo-sensor")
		if n := len(col.flows(t, window)); n != 0 {
			t.Errorf("%d flow records stored from a sensor of another CA", n)
		}
		refused := col.metric(t, "tapir_collector_ingest_streams_total", "refused")
		logged := strings.TrimPrefix(col.proc.Log.String(), before)
		if refused == 0 && !strings.Contains(strings.ToLower(logged), "handshake") &&
			!strings.Contains(strings.ToLower(logged), "certificate") {
			t.Errorf("the collector shows no trace of the refused connection (no refused_* stream metric, "+
				"no log line about the handshake or the certificate); its log since the attempt:\n%s", logged)
		}
	})

	t.Run("sensor id not the certificate's", func(t *testing.T) {
		// demo-sensor's certificate and key, presented as sensor "other".
		dir := filepath.Join(work, "borrowed")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for src, dst := range map[string]string{"ca.pem": "ca.pem", "sensor-demo-sensor.pem": "sensor-other.pem",
			"sensor-demo-sensor-key.pem": "sensor-other-key.pem"} {
			b, err := os.ReadFile(filepath.Join(p.dir, src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		before := col.metric(t, "tapir_collector_ingest_streams_total", `result="refused_identity"`)
		run("borrowed", dir, "other")
		if after := col.metric(t, "tapir_collector_ingest_streams_total", `result="refused_identity"`); after <= before {
			t.Errorf("refused_identity streams %v -> %v: the mismatch was not refused", before, after)
		}
		if n := len(col.flows(t, window)); n != 0 {
			t.Errorf("%d flow records stored from a sensor with a borrowed identity", n)
		}
	})

	// A real sensor, so that there is something to retrieve.
	args := append([]string{"-r", file}, col.sensorArgs("demo-sensor", filepath.Join(work, "spool-good"))...)
	mustRun(t, 60*time.Second, bin.sensor, args...)
	recs := col.flows(t, window)
	if len(recs) != 1 {
		t.Fatalf("%d records from get.pcap, want 1", len(recs))
	}
	cid := recs[0].Network.CommunityID

	t.Run("tokens", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for name, tok := range map[string]string{"no token": "", "wrong token": "0123456789abcdef0123456789abcdef"} {
			out := filepath.Join(work, "denied.pcap")
			_, stderr, err := col.tapirToken(ctx, tok, "pcap", "--flow", cid, "-o", out)
			if err == nil || !bytes.Contains(stderr, []byte("401")) {
				t.Errorf("%s: tapir pcap: err %v, stderr %s; want a 401", name, err, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s: an output file was left behind", name)
			}
		}
		out := filepath.Join(work, "allowed.pcap")
		if _, err := col.pcap(ctx, cid, out); err != nil {
			t.Fatal(err)
		}
		size := fileSize(t, out)
		var allowed, denied int
		f, err := os.Open(col.audit)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e struct {
				Subject  string `json:"subject"`
				Endpoint string `json:"endpoint"`
				Flow     string `json:"flow"`
				Status   int    `json:"status"`
				Packets  int64  `json:"packets"`
				Bytes    int64  `json:"bytes"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("audit line %q: %v", sc.Text(), err)
			}
			if e.Endpoint != "pcap" {
				continue
			}
			switch e.Status {
			case 401:
				denied++
			case 200:
				allowed++
				if e.Subject != "e2e-investigator" || e.Flow != cid || e.Bytes != size || e.Packets != int64(recs[0].Network.Packets) {
					t.Errorf("audit entry %s: want subject e2e-investigator, flow %s, %d bytes (the file's size), %d packets",
						sc.Text(), cid, size, recs[0].Network.Packets)
				}
			}
		}
		if allowed != 1 || denied != 2 {
			t.Errorf("audit log holds %d allowed and %d denied pcap requests, want 1 and 2", allowed, denied)
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
