package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/netnstest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestFreshness captures live on a veth in a network namespace, with the
// collector and the tapir CLI in that namespace too, replays a ping capture, and
// measures the time from sending until `tapir pcap --flow` returns both
// packets of the exchange. The requirement: a packet is retrievable
// within 5 seconds of capture.
func TestFreshness(t *testing.T) {
	needBinaries(t)
	testenv.Root(t)
	pair := netnstest.New(t, netnstest.Options{})
	testenv.Tool(t, "tshark")
	file := testenv.Pcap(t, "zeek/icmp-ping.pcap")
	frames, _ := readFrames(t, file)
	if len(frames) == 0 || frames[0].cid == "" {
		t.Fatalf("no IP flow in %s", file)
	}
	cid, want := frames[0].cid, 0
	for _, f := range frames {
		if f.cid == cid {
			want++
		}
	}
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "live")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ns = pair.CaptureNS
	col.mets = "127.0.0.1:0"
	col.start()

	args := append([]string{"-i", pair.CaptureIf}, col.sensorArgs("live", filepath.Join(work, "spool"))...)
	sensor := startProc(t, col.wrap(append([]string{bin.sensor}, args...)...)...)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(sensor.Log.String(), "connected to collector") {
		if sensor.Exited() || time.Now().After(deadline) {
			t.Fatalf("sensor did not connect:\n%s", sensor.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the capture sockets are open once connected and started

	sent := time.Now()
	if res, err := netnstest.Replay(t, pair.PeerNS, pair.PeerIf, file, 0, 0); err != nil || res.Sent != len(frames) {
		t.Fatalf("tcpreplay: %v (%+v)", err, res)
	}
	out := filepath.Join(work, "fresh.pcap")
	var got []frame
	var attempts int
	for {
		attempts++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := col.pcap(ctx, cid, out)
		cancel()
		if err == nil {
			_, _, recs, rerr := readPcapRecords(out)
			if rerr == nil && len(recs) >= want {
				got = make([]frame, len(recs))
				break
			}
		}
		if time.Since(sent) > 30*time.Second {
			t.Fatalf("flow %s not retrievable after 30 s (%d attempts): %v\nsensor:\n%s", cid, attempts, err,
				e2etest.LastLines(sensor.Log.String(), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fresh := time.Since(sent)
	t.Logf("replay sent to all packets retrievable with tapir pcap --flow %s: %.2f s (%d attempts, %d packets)",
		cid, fresh.Seconds(), attempts, len(got))
	if fresh > 5*time.Second {
		t.Errorf("packets retrievable %.2f s after capture; the requirement is under 5 s", fresh.Seconds())
	}
	os.Remove(out)
}
