package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestCapturesThatWedgedTheStream streams, one sensor each, the shared
// captures on which TestPcapByCommunityIDEveryCapture found the collector
// refusing or losing data, and checks that every batch is acknowledged and
// every flow tshark sees is listed by `tapir flows`:
//
//   - pcapgo-tests test101/test102/test201/test202 (be and le): a packet
//     without a timestamp (Simple Packet Block, time 0) after timed ones
//     gives a block whose Last is before its First;
//   - zeek/ipv6-fragmented-dns.pcap: a block without a flow ID;
//   - pcapgo-tests test001 (and others whose packets are all at time 0):
//     records at Unix time 0.
func TestCapturesThatWedgedTheStream(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	files := []string{
		"gopacket/pcapgo-tests/le/test101.pcapng",
		"gopacket/pcapgo-tests/be/test202.pcapng",
		"zeek/ipv6-fragmented-dns.pcap",
		"gopacket/pcapgo-tests/le/test001.pcapng",
	}
	work := t.TempDir()
	ids := make([]string, len(files))
	for i := range files {
		ids[i] = fmt.Sprintf("bug%d", i)
	}
	p := newPKI(t, filepath.Join(work, "certs"), ids...)
	col := newCollector(t, filepath.Join(work, "collector"), p)
	for i, rel := range files {
		t.Run(rel, func(t *testing.T) {
			file := testenv.Pcap(t, rel)
			args := append([]string{"-r", file, "--drain-timeout", "5s"}, col.sensorArgs(ids[i], filepath.Join(work, "spool", ids[i]))...)
			sp := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)
			sp.Wait(60 * time.Second)
			if strings.Contains(sp.Log.String(), "not acknowledged everything") {
				t.Errorf("the collector never acknowledged the sensor's data; it said:\n%s",
					grepLines(col.proc.Log.String(), "sensor="+ids[i]+" ", 3))
			}
			frames, _ := readFrames(t, file)
			listed := map[string]bool{}
			for _, w := range windows(frames) {
				for _, r := range col.flows(t, w) {
					if r.Tapir.SensorID == ids[i] {
						listed[r.Network.CommunityID] = true
					}
				}
			}
			for _, f := range frames {
				if f.cid != "" && !listed[f.cid] {
					t.Errorf("flow %s (%s, frame %d at %q) not listed by tapir flows", f.cid, f.tuple, f.num, f.epoch)
					listed[f.cid] = true
				}
			}
		})
	}
}
