package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// runSensorBin runs tapir-sensor with args and returns its exit code and
// standard error.
func runSensorBin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	sensor, _ := binaries(t)
	var errb bytes.Buffer
	cmd := exec.Command(sensor, args...)
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	} else if err != nil {
		t.Fatalf("tapir-sensor %s: %v", strings.Join(args, " "), err)
	}
	return 0, errb.String()
}

// storedLengths returns the longest stored packet and the longest wire
// length among the packets of a --blocks-out directory.
func storedLengths(t *testing.T, dir string) (maxStored, maxWire, packets int) {
	t.Helper()
	r := block.DirReader{Dir: dir}
	_, err := r.Read(func(_ block.Meta, b *block.Block) error {
		pr := b.Reader()
		for {
			_, orig, data, err := pr.Next()
			if err != nil {
				return nil
			}
			packets++
			maxStored, maxWire = max(maxStored, len(data)), max(maxWire, orig)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return maxStored, maxWire, packets
}

// TestSnaplenIsTheCaptureLength: --snaplen sets the live capture length,
// capture.snap_len, as tcpdump's -s does: it is validated as a ring
// setting, and 0 means the largest (262144).
func TestSnaplenIsTheCaptureLength(t *testing.T) {
	out := filepath.Join(t.TempDir(), "flows.json")
	code, stderr := runSensorBin(t, "check-config", "-i", "lo", "--flows-out", out, "--snaplen", "10")
	if code != 2 || !strings.Contains(stderr, "snap-len 10") {
		t.Fatalf("--snaplen 10 on a live interface: exit %d, %q; want the capture length refused", code, stderr)
	}
	for _, n := range []string{"0", "96", "262144"} {
		if code, stderr := runSensorBin(t, "check-config", "-i", "lo", "--flows-out", out, "--snaplen", n); code != 0 {
			t.Errorf("--snaplen %s: exit %d, %q", n, code, stderr)
		}
	}
}

// TestStoreBytesCutsStoredPackets: --store-bytes (flows.store_bytes)
// limits the bytes stored per packet, while --snaplen with -r stores
// packets whole and warns that it only applies to live capture.
func TestStoreBytesCutsStoredPackets(t *testing.T) {
	in := testenv.Pcap(t, "zeek/wikipedia.pcap")
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut")
	if code, stderr := runSensorBin(t, "-r", in, "--sensor-id", "sb", "--store-bytes", "80", "--blocks-out", cut); code != 0 {
		t.Fatalf("--store-bytes 80: exit %d, %s", code, stderr)
	}
	stored, wire, n := storedLengths(t, cut)
	if n == 0 || stored != 80 || wire <= 80 {
		t.Fatalf("--store-bytes 80: %d packets, longest stored %d, longest on the wire %d; want 80 stored of longer packets", n, stored, wire)
	}
	whole := filepath.Join(dir, "whole")
	code, stderr := runSensorBin(t, "-r", in, "--sensor-id", "sb", "--snaplen", "80", "--blocks-out", whole)
	if code != 0 || !strings.Contains(stderr, "--snaplen is the live capture length") {
		t.Fatalf("--snaplen 80 with -r: exit %d, %q; want a warning", code, stderr)
	}
	if stored, wire, _ := storedLengths(t, whole); stored != wire {
		t.Fatalf("--snaplen 80 with -r stored %d of %d bytes; want packets whole", stored, wire)
	}
}

// TestDeprecatedKeysWarn: the renamed keys flows.snap_len and
// output.collector.drain_timeout still work for one release, with a
// warning naming their replacement.
func TestDeprecatedKeysWarn(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "old.yaml")
	if err := os.WriteFile(cfg, []byte("flows:\n  snap_len: 80\noutput:\n  flows_out: "+filepath.Join(dir, "f.json")+
		"\n  collector:\n    drain_timeout: 3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runSensorBin(t, "check-config", "--config", cfg, "-r", "x.pcap")
	if code != 0 {
		t.Fatalf("deprecated keys: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"flows.snap_len is deprecated: use flows.store_bytes",
		"output.collector.drain_timeout is deprecated: use output.collector.stop_ack_timeout"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no warning %q in %q", want, stderr)
		}
	}
	blocks := filepath.Join(dir, "blocks")
	if code, stderr := runSensorBin(t, "--config", cfg, "-r", testenv.Pcap(t, "zeek/wikipedia.pcap"), "--blocks-out", blocks); code != 0 {
		t.Fatalf("run with flows.snap_len: exit %d, %s", code, stderr)
	}
	if stored, _, _ := storedLengths(t, blocks); stored != 80 {
		t.Fatalf("flows.snap_len 80 stored up to %d bytes; want 80", stored)
	}
}
