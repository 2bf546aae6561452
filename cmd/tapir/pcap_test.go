package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestPcapSelectsFlow stores two captures' flows in one directory and
// pulls out one flow by Community ID: tshark must see exactly the
// packets of that capture.
func TestPcapSelectsFlow(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	udp := testenv.Pcap(t, "community-id-spec/udp.pcap")
	get := testenv.Pcap(t, "zeek/get.pcap")
	dir := filepath.Join(t.TempDir(), "blocks")
	var groups []string
	var udpID string
	for _, p := range []string{get, udp} {
		pkts, err := readCapture(p)
		if err != nil {
			t.Fatal(err)
		}
		groups = writeBlocks(t, dir, pkts, 1<<10)
		// writeBlocks numbers flows from 0 and stamps their first packet.
		udpID = flow.NewID(timeUnix(pkts[0].ts), 1, 0).String()
	}
	for _, g := range groups[1:] {
		if g != groups[0] {
			t.Fatalf("udp.pcap holds more than one group: %v", groups)
		}
	}
	out := filepath.Join(t.TempDir(), "one.pcap")
	if code, stderr := runTapir("pcap", "--blocks", dir, "--community-id", "group:"+groups[0], "-o", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	compareFrames(t, "pcap", tsharkFrames(t, tshark, udp), tsharkFrames(t, tshark, out), groups)
	if code, stderr := runTapir("pcap", "--blocks", dir, "--flow-id", udpID, "-o", out, "--format", "pcapng"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	compareFrames(t, "pcapng", tsharkFrames(t, tshark, udp), tsharkFrames(t, tshark, out), groups)

	// Unknown selections are an error (exit 1) and leave no capture
	// behind (TestPcapBlocksUnknownFlow runs the binary); bad flags exit 2.
	os.Remove(out)
	if code, stderr := runTapir("pcap", "--blocks", dir, "--community-id", "1:nope", "-o", out); code != 1 || !strings.Contains(stderr, "1:nope") {
		t.Fatalf("unknown Community ID: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("unknown Community ID: an output file was written")
	}
	for _, args := range [][]string{
		{"pcap", "--blocks", dir},
		{"pcap", "-o", out},
		{"pcap", "--blocks", dir, "-o", out, "--format", "erf"},
		{"pcap", "--blocks", dir, "-o", out, "--flow-id", "xyz"},
		{"nosuchcommand"},
	} {
		if code, stderr := runTapir(args...); code != 2 || stderr == "" {
			t.Fatalf("%s: exit %d, %q; want usage error", strings.Join(args, " "), code, stderr)
		}
	}
}
