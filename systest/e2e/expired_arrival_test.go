package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestOldCaptureWarnedAtIngest is issue 17's surprise through the real
// binaries: tapir-sensor streams a capture recorded in 2013 to a
// collector keeping packets 7 days. The collector stores the batch, but
// says at ingest, once for the sensor, that its packets are already past
// retention, and counts them (as many as tshark reads from the file) in
// tapir_collector_ingest_expired_on_arrival_packets_total{sensor}.
func TestOldCaptureWarnedAtIngest(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	file := testenv.Plain(t, testenv.Pcap(t, "zeek/get.pcap"))
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", file, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatal(err)
	}
	frames := len(strings.Fields(string(out)))
	const id = "backfill"
	p := newPKI(t, filepath.Join(work, "certs"), id)
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.maxAge = "168h"
	col.start()
	code, slog := sensorRun(t, col, id, filepath.Join(work, "spool"), file)
	if code != 0 {
		t.Fatalf("tapir-sensor exit %d:\n%s", code, e2etest.LastLines(slog, 15))
	}
	if got := col.metric(t, "tapir_collector_ingest_expired_on_arrival_packets_total", `sensor="`+id+`"`); int(got) != frames {
		t.Errorf("expired on arrival: %v packets, tshark reads %d frames", got, frames)
	}
	if got := col.metric(t, "tapir_collector_ingest_batches_total", `result="stored"`); got < 1 {
		t.Errorf("%v batches stored", got)
	}
	log := col.proc.Log.String()
	warn := grepLines(log, "older than the packet retention", 5)
	if strings.Count(warn, "\n")+1 != 1 || !strings.Contains(warn, "sensor="+id) || !strings.Contains(warn, "level=WARN") {
		t.Errorf("want one warning naming the sensor, got:\n%s", warn)
	}
}
