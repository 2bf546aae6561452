package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestDiskFullExitsAndRecovers puts the real collector's store on a 4 MiB
// tmpfs with the free-space guard off (min_free_bytes: 0), which the
// collector fills while a sensor streams the largest shared capture. The
// collector must not wedge: it exits 75 (store failed) at once instead of
// spinning, a restart while the disk is still full exits 75 again, and
// once space returns (the tmpfs grown) a restart takes the sensor's
// resent batches so that every flow is stored exactly once, as in the
// offline run.
func TestDiskFullExitsAndRecovers(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	file := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	work := t.TempDir()
	fs := mountTmpfs(t, "4m")
	p := newPKI(t, filepath.Join(work, "certs"), "full")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.store = filepath.Join(fs, "store")
	small := withPebble("    min_free_bytes: 0\n    memtable_bytes: 1048576\n    cache_bytes: 1048576\n")
	if pr := col.startEdited(small); col.proc != pr {
		t.Fatalf("collector did not start:\n%s", pr.Log.String())
	}
	want := offlineFlows(t, file, "full")
	cfg := filepath.Join(work, "sensor.yaml")
	if err := os.WriteFile(cfg, []byte(smallBatches), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-r", file, "--config", cfg, "--drain-timeout", "5m"}, col.sensorArgs("full", filepath.Join(work, "spool"))...)
	sensor := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)

	code, exited := col.proc.Wait(90 * time.Second)
	log := col.proc.Log.String()
	if !exited || code != 75 {
		t.Fatalf("with the disk full the collector exited %v with code %d, want 75 at once:\n%s", exited, code, e2etest.LastLines(log, 12))
	}
	if !strings.Contains(log, "no space left on device") || !strings.Contains(log, `msg="store failed`) {
		t.Errorf("the collector's log does not say the store failed for lack of space:\n%s", e2etest.LastLines(log, 12))
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `msg="store failed`) {
			t.Log(l)
		}
	}
	if sensor.Exited() {
		t.Fatalf("the sensor gave up while the collector was down:\n%s", e2etest.LastLines(sensor.Log.String(), 10))
	}

	// A supervisor restart with the disk still full: exit 75 again, not a
	// collector that runs and refuses everything.
	pr := col.startEdited(small)
	if code, exited := pr.Wait(60 * time.Second); !exited || code != 75 {
		t.Fatalf("restart on a full disk: exited %v code %d, want 75:\n%s", exited, code, e2etest.LastLines(pr.Log.String(), 12))
	}

	if out, err := exec.Command("mount", "-o", "remount,size=64m", fs).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	if pr := col.startEdited(small); col.proc != pr {
		t.Fatalf("collector did not start once space was freed:\n%s", pr.Log.String())
	}
	code, ok := sensor.Wait(180 * time.Second)
	if !ok || code != 0 || strings.Contains(sensor.Log.String(), "not acknowledged everything") {
		t.Fatalf("sensor exit %d (finished %v):\n%s", code, ok, e2etest.LastLines(sensor.Log.String(), 15))
	}
	frames, _ := readFrames(t, file)
	compareFlowSets(t, "after the disk filled and was freed", want, collectorFlows(t, col, frames, "full"))
	t.Logf("%d flows compared with the offline run", len(want))
	spotCheckPcaps(t, col, frames, 4)
}
