package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// nsText writes nanoseconds since the epoch as unix seconds with nine
// decimals, a time both tapir and tshark's filters read exactly.
func nsText(ns int64) string { return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9) }

// TestPcapBlocksWindowPerPacket: offline `tapir pcap --blocks --from
// --to` writes exactly the packets in [from, to) as tshark selects them
// from the original capture, though the stored blocks straddle both ends
// of the window.
func TestPcapBlocksWindowPerPacket(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	orig := testenv.Pcap(t, "zeek/wikipedia.pcap")
	pkts, err := readCapture(orig)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "blocks")
	writeBlocks(t, dir, pkts, 1<<20) // few large blocks: they straddle the window
	// Cut between packets a third and two thirds in (timestamps between
	// two packets, so that no packet sits on an edge).
	i, j := len(pkts)/3, 2*len(pkts)/3
	from, to := (pkts[i-1].ts+pkts[i].ts)/2, (pkts[j-1].ts+pkts[j].ts)/2
	if pkts[i-1].ts == pkts[i].ts || pkts[j-1].ts == pkts[j].ts {
		t.Fatalf("packets %d or %d share a timestamp with the one before", i, j)
	}
	out := filepath.Join(t.TempDir(), "window.pcap")
	code, _, se := execTapir(t, nil, "pcap", "--blocks", dir, "--from", nsText(from), "--to", nsText(to), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	fields := func(p, filter string) string {
		args := []string{"-r", p, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"}
		if filter != "" {
			args = append(args, "-Y", filter)
		}
		b, err := exec.Command(tshark, args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", p, err)
		}
		return string(b)
	}
	want := fields(orig, "frame.time_epoch >= "+nsText(from)+" && frame.time_epoch < "+nsText(to))
	got := fields(out, "")
	if n := strings.Count(want, "\n"); n == 0 || n == len(pkts) {
		t.Fatalf("window selects %d of %d packets", n, len(pkts))
	}
	if got != want {
		t.Fatalf("window: %d frames, tshark selects %d from the original", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
}

// TestPcapBlocksUnknownFlow: offline `tapir pcap --blocks` with a flow ID
// or Community ID that no block holds fails (exit 1) with a message that
// names it and writes no file.
func TestPcapBlocksUnknownFlow(t *testing.T) {
	pkts, err := readCapture(testenv.Pcap(t, "zeek/get.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "blocks")
	writeBlocks(t, dir, pkts, 1<<10)
	unknownID := flow.NewID(timeUnix(pkts[0].ts), 1, 999).String()
	for _, sel := range [][]string{{"--flow-id", unknownID}, {"--community-id", "1:nope"}} {
		out := filepath.Join(t.TempDir(), "out.pcap")
		code, _, se := execTapir(t, nil, append([]string{"pcap", "--blocks", dir, "-o", out}, sel...)...)
		if code != 1 || !strings.Contains(se, sel[1]) || !strings.Contains(se, "no output written") {
			t.Errorf("%v: exit %d, stderr %s", sel, code, se)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: an output file was left behind", sel)
		}
	}
}
