package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestSensorSIGKILLSpoolSurvives kills the sensor with SIGKILL while the
// collector is down and the sensor is waiting to deliver what it spooled,
// then starts the collector and a new sensor run on the same spool (a
// host rebooted by its watchdog): the killed run's flows and the new run's
// all arrive, exactly once.
func TestSensorSIGKILLSpoolSurvives(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "killed")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ingest, col.api, col.mets = freePort(t), freePort(t), freePort(t)
	spool := filepath.Join(work, "spool")
	first := testenv.Pcap(t, "zeek/echo-connections.pcap.gz")

	args := append([]string{bin.sensor, "-r", first}, col.sensorArgs("killed", spool)...)
	args = append(append(args, longTimeouts...), "--drain-timeout", "120s")
	sensor := startProc(t, args...)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(sensor.Log.String(), "waiting for the collector's acknowledgements") {
		if sensor.Exited() || time.Now().After(deadline) {
			t.Fatalf("the sensor did not finish reading (exited %v):\n%s", sensor.Exited(), e2etest.LastLines(sensor.Log.String(), 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The run now waits for a collector; its batches are in the spool
	// once the spool stops growing.
	waitSpoolSettled(t, spool)
	sensor.Kill()
	if code, _ := sensor.Wait(10 * time.Second); code == 0 {
		t.Fatalf("SIGKILLed sensor exited 0")
	}

	col.start()
	second := testenv.Pcap(t, "zeek/ssh.pcap")
	code, log := sensorRun(t, col, "killed", spool, second, "--drain-timeout", "30s")
	if code != 0 {
		t.Fatalf("second run exit %d:\n%s", code, e2etest.LastLines(log, 10))
	}
	for _, f := range []string{first, second} {
		frames, _ := readFrames(t, f)
		compareFlowSets(t, filepath.Base(f)+" after a sensor SIGKILL", offlineFlows(t, f, "killed"), collectorFlows(t, col, frames, "killed"))
	}
}

// waitSpoolSettled waits until the spool directory's total size has not
// changed for a second.
func waitSpoolSettled(t *testing.T, dir string) {
	t.Helper()
	size := func() int64 {
		var n int64
		_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
		return n
	}
	last, since := size(), time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("spool %s still growing after 60 s", dir)
		}
		time.Sleep(100 * time.Millisecond)
		if n := size(); n != last {
			last, since = n, time.Now()
		}
	}
	if last == 0 {
		t.Fatalf("nothing spooled in %s", dir)
	}
}
