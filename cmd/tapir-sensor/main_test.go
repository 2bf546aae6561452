package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/netnstest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// buildSensor builds the tapir-sensor binary into a temporary directory.
func buildSensor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tapir-sensor")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCheckConfig runs `tapir-sensor check-config` on good and bad files:
// it must say precisely what is wrong and exit 2.
func TestCheckConfig(t *testing.T) {
	var out, errb bytes.Buffer
	example := filepath.Join(testenv.RepoRoot(t), "deploy", "sensor.example.yaml")
	// check-config reads the TLS files the example names: give it real
	// ones for its sensor id (the example's /etc/tapir/certs is not here).
	certs := t.TempDir()
	if err := tlsconfig.GenerateCA(certs); err != nil {
		t.Fatal(err)
	}
	if err := tlsconfig.IssueSensor(certs, "tap-01"); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"check-config", "--config", example, "--tls-dir", certs}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("example: exit %d, %s %s", code, out.String(), errb.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("capture:\n  interfaces: [eth0]\n  workers: 0\noutput:\n  flows_out: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", "--config", bad}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "capture.workers 0") {
		t.Fatalf("bad workers: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"check-config", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no such file") {
		t.Fatalf("missing file: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"-r", "x.pcap", "--idle-timeout", "soon"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d, %q", code, errb.String())
	}
}

// TestDamagedFileExitsWithError: a capture cut in the middle of a packet
// gives every flow before the damage and a clear error (exit 1).
func TestDamagedFileExitsWithError(t *testing.T) {
	src := testenv.Pcap(t, "zeek/wikipedia.pcap")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, raw[:len(raw)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	flows := filepath.Join(t.TempDir(), "flows.json")
	var out, errb bytes.Buffer
	code := run([]string{"-r", cut, "--flows-out", flows, "--sensor-id", "t"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "truncated") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	data, _ := os.ReadFile(flows)
	if n := bytes.Count(data, []byte("\n")); n == 0 {
		t.Fatal("no flow record written before the damage")
	}
}

// TestSIGTERMFlushesLiveCapture runs the sensor binary on a veth in a
// private namespace, replays a capture into it, then sends SIGTERM: the
// sensor must exit within seconds, having written every flow, ended with
// reason end-of-capture or a TCP close, and counted every packet.
func TestSIGTERMFlushesLiveCapture(t *testing.T) {
	testenv.Root(t)
	netnstest.Require(t, "ip", "tcpreplay", "tcpdump")
	bin := buildSensor(t)
	pair := netnstest.New(t, netnstest.Options{MTU: 9000})
	dir := t.TempDir()
	flows := filepath.Join(dir, "flows.json")
	var stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", pair.CaptureNS, bin, "-i", pair.CaptureIf, "--workers", "2",
		"--sensor-id", "sig", "--flows-out", flows, "--blocks-out", filepath.Join(dir, "blocks"), "--idle-timeout", "1h")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill fails once the process has exited: nothing left to clean up.
	defer func() { _ = cmd.Process.Kill() }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "capturing") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res, err := netnstest.Replay(t, pair.PeerNS, pair.PeerIf, testenv.Pcap(t, "zeek/wikipedia.pcap"), 2000, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	// ip netns exec runs the sensor as its own process (exec), so the
	// signal reaches it.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sensor exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sensor still running 10 s after SIGTERM\n%s", stderr.String())
	}
	took := time.Since(start)
	t.Logf("exited %v after SIGTERM", took)
	if took > 3*time.Second {
		t.Errorf("exit took %v", took)
	}
	f, err := os.Open(flows)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var packets uint64
	reasons := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Network struct{ Packets uint64 }
			Event   struct{ Reason string }
			Tapir   struct{ Final bool }
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Tapir.Final {
			packets += r.Network.Packets
			reasons[r.Event.Reason]++
		}
	}
	if packets != uint64(res.Sent) {
		t.Fatalf("final records hold %d packets, tcpreplay sent %d\n%s", packets, res.Sent, stderr.String())
	}
	if reasons["end-of-capture"] == 0 {
		t.Errorf("no flow ended with end-of-capture: %v", reasons)
	}
	t.Logf("reasons %v", reasons)
}
