package api

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// tsharkEpochs lists the frame.time_epoch of every packet of a capture as
// tshark prints it (seconds with nine decimals).
func tsharkEpochs(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-T", "fields", "-e", "frame.time_epoch").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

// TestPcapWindowCutsPerPacket fetches get.pcap's only connection with a
// from/to window that starts and ends inside blocks (one block holding
// the whole flow, then blocks of 4 packets): the answer holds exactly the
// packets tshark's time filter selects from the original capture, byte
// for byte, not the whole blocks the window touches. A window between
// two packets answers 404 "no_packets_in_window".
func TestPcapWindowCutsPerPacket(t *testing.T) {
	path := testenv.Plain(t, testenv.Pcap(t, "zeek/get.pcap"))
	ep := tsharkEpochs(t, path) // 14 packets, all of one TCP connection
	if len(ep) != 14 {
		t.Fatalf("get.pcap: %d packets, want 14", len(ep))
	}
	windows := [][2]string{
		{ep[2], ep[7]},   // packets 3..8, both bounds on a packet
		{ep[0], ep[0]},   // the first packet alone
		{ep[5], ep[13]},  // to the end
		{"0", ep[3]},     // from the start
		{ep[12], ep[13]}, // the last two
	}
	for _, perBlock := range []int{1000, 4} {
		c := loadCapture(t, path, []string{"s1"}, perBlock)
		st := openStore(t)
		writeBatches(t, st, c.batches(true))
		ts := startServer(t, st, c.last.Add(time.Minute), nil)
		cid := url.QueryEscape(c.flows[0].rec.CommunityID)
		for _, w := range windows {
			sel := filepath.Join(t.TempDir(), "sel.pcap")
			filter := "frame.time_epoch >= " + w[0] + " && frame.time_epoch <= " + w[1]
			if out, err := execTool(t, "tshark", "-r", path, "-Y", filter, "-F", "pcap", "-w", sel); err != nil {
				t.Fatalf("tshark %s: %v %s", filter, err, out)
			}
			want := tcpdumpText(t, sel)
			resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid+"&from="+w[0]+"&to="+w[1])
			if resp.StatusCode != 200 {
				t.Fatalf("per block %d, window %v: %d %s", perBlock, w, resp.StatusCode, body)
			}
			got := tcpdumpText(t, writeTemp(t, "w.pcap", body))
			if want == "" || got != want {
				t.Fatalf("per block %d, window %v: answer differs from tshark's %q\n--- got\n%s\n--- want\n%s",
					perBlock, w, filter, got, want)
			}
			if p := resp.Trailer.Get("X-Tapir-Packets"); p != itoa(uint16(countLines(want, "\t"))) {
				t.Errorf("per block %d, window %v: X-Tapir-Packets %s, tshark selected %d", perBlock, w, p, countLines(want, "\t"))
			}
		}
		// Between packets 1 and 2 (70 ms apart): nothing inside.
		resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cid+"&from=1362692526.87&to=1362692526.93")
		if code, _ := errorCode(t, body); resp.StatusCode != 404 || code != "no_packets_in_window" {
			t.Errorf("per block %d, empty window: %d %s", perBlock, resp.StatusCode, body)
		}
	}
}
