package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/internal/testdata"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// TestSensorBlocksRoundTrip is the round trip through the real
// sensor: every shared capture goes through the sensor engine (decode,
// flow table, per-flow blocks, zstd) into block segment files, `tapir pcap
// --blocks` turns them back into a capture, and tshark, reading both
// files, must find exactly the input frames (timestamps to the
// nanosecond, lengths, every byte), with each address pair's frames in
// input order. Small blocks and short ages make flows span many blocks.
func TestSensorBlocksRoundTrip(t *testing.T) {
	tshark := testdata.Tool(t, "tshark")
	for _, file := range testdata.Captures(t) {
		rel := testdata.Rel(t, file)
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			p := testdata.Plain(t, file)
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

// runSensorToBlocks runs the sensor engine over a file into a block dir.
// A damaged file must be damaged for tshark too; what came before the
// damage is still written.
func runSensorToBlocks(t *testing.T, path, dir string) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bc := block.DefaultDirWriterConfig()
	bc.Dir = dir
	blocks, err := output.NewBlocks(bc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.SensorID = "roundtrip"
	cfg.Blocks.MaxBytes = 4 << 10
	cfg.Blocks.MaxAge = 50 * time.Millisecond
	e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: blocks})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.Wait(); err != nil {
		if exec.Command("tshark", "-r", path).Run() == nil {
			t.Fatalf("sensor failed on a file tshark reads: %v", err)
		}
		t.Logf("damaged input, as tshark agrees: %v", err)
	}
	if err := blocks.Close(); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.StoredPackets != st.Packets || st.BlockErrors != 0 {
		t.Fatalf("stored %d of %d packets, %d block errors", st.StoredPackets, st.Packets, st.BlockErrors)
	}
}
