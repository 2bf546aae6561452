package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/gopacket/gopacket"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestSensorBlocksRoundTrip is the round trip through the real
// sensor: every shared capture goes through the sensor engine (decode,
// flow table, blocks; the tapir-sensor binary) into block segment files, `tapir pcap
// --blocks` turns them back into a capture, and tshark, reading both
// files, must find exactly the input frames (timestamps to the
// nanosecond, lengths, every byte), with each address pair's frames in
// input order. Small blocks and short ages make flows span many blocks.
func TestSensorBlocksRoundTrip(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	for _, file := range testenv.Captures(t) {
		rel := testenv.Rel(t, file)
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			p := testenv.Plain(t, file)
			in, terr := tsharkRead(t, tshark, p)
			if terr != nil {
				t.Skipf("tshark cannot read the input (no oracle): %v", terr)
			}
			pkts, _ := readCapture(p)
			dir := filepath.Join(t.TempDir(), "blocks")
			runSensorToBlocks(t, p, dir)

			groups := make([]string, len(in))
			for i := range in {
				if i < len(pkts) {
					groups[i] = flowGroupOf(&pkts[i])
				}
			}
			out := filepath.Join(t.TempDir(), "out.pcapng")
			if code, stderr := runTapir("pcap", "--blocks", dir, "-o", out, "--format", "pcapng"); code != 0 {
				t.Fatalf("tapir pcap: exit %d: %s", code, stderr)
			}
			got := tsharkFrames(t, tshark, out)
			compareFrames(t, "pcapng", in, got, groups)
		})
	}
}

// flowGroupOf is groupOf refined by the transport ports: packets of one
// 5-tuple keep their order; packets of different flows with equal
// timestamps may come out in either order.
func flowGroupOf(p *capPacket) string {
	pk := gopacket.NewPacket(p.data, p.linkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var h uint64
	if tl := pk.TransportLayer(); tl != nil {
		h = tl.TransportFlow().FastHash()
	}
	return fmt.Sprintf("%s/%x", groupOf(p), h)
}

// sensorBinary builds tapir-sensor once for the tests of this package
// (the CLI may not import the sensor's packages: it runs its binary, as an
// operator would).
var sensorBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tapir-sensor-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tapir-sensor")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tapir-sensor/tapir/cmd/tapir-sensor").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build tapir-sensor: %v\n%s", err, out)
	}
	return bin, nil
})

// finishedCounter reads one counter of the sensor's "capture finished"
// log line.
func finishedCounter(t *testing.T, log, name string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`msg="capture finished".*\b` + name + `=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no %s in the sensor's log:\n%s", name, log)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runSensorToBlocks runs tapir-sensor over a file into a block dir, with
// small blocks and short ages so that flows span many blocks. A damaged
// file must be damaged for tshark too; what came before the damage is
// still written.
func runSensorToBlocks(t *testing.T, path, dir string) {
	t.Helper()
	bin, err := sensorBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(cfg, []byte("sensor_id: roundtrip\nblocks:\n  max_bytes: 4096\n  max_age: 50ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--config", cfg, "-r", path, "--blocks-out", dir, "--log-level", "info")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if exec.Command("tshark", "-r", path).Run() == nil {
			t.Fatalf("sensor failed on a file tshark reads: %v\n%s", err, stderr.String())
		}
		t.Logf("damaged input, as tshark agrees: %v", err)
	}
	log := stderr.String()
	packets, stored := finishedCounter(t, log, "packets"), finishedCounter(t, log, "stored_packets")
	if blockErrors := finishedCounter(t, log, "block_errors"); stored != packets || blockErrors != 0 {
		t.Fatalf("stored %d of %d packets, %d block errors", stored, packets, blockErrors)
	}
}
