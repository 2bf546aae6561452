package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// smallBatches is a sensor configuration that sends many small batches,
// so that a collector can be killed with batches in flight.
const smallBatches = "output:\n  collector:\n    max_batch_bytes: 65536\n    max_batch_blocks: 64\n    max_delay: 50ms\n"

// offlineFlows runs tapir-sensor -r FILE --flows-out - and returns the
// final records keyed by Community ID and start.
func offlineFlows(t *testing.T, file, sensorID string) map[string]uint64 {
	t.Helper()
	args := append([]string{"-r", file, "--flows-out", "-", "--sensor-id", sensorID, "--log-level", "warn"}, longTimeouts...)
	out := mustRun(t, 120*time.Second, bin.sensor, args...)
	return flowPackets(t, parseFlows(t, out), sensorID)
}

// flowPackets keys flows by Community ID (or MACs and EtherType for
// link-layer pseudo flows: flow IDs differ between sensor runs) and start
// time, with the packets of the flow's newest
// record (update records repeat the flow ID with Segment+1 and carry
// running totals; the collector keeps the newest).
func flowPackets(t *testing.T, recs []ecsFlow, sensorID string) map[string]uint64 {
	t.Helper()
	newest := map[string]ecsFlow{}
	for _, r := range recs {
		if r.Tapir.SensorID != sensorID {
			continue
		}
		if prev, ok := newest[r.Tapir.FlowID]; !ok || r.Tapir.Segment > prev.Tapir.Segment {
			newest[r.Tapir.FlowID] = r
		}
	}
	m := map[string]uint64{}
	for _, r := range newest {
		name := r.Network.CommunityID
		if name == "" {
			name = "link:" + r.Source.MAC + ">" + r.Destination.MAC + "/" + r.Network.EtherType
		}
		k := name + "@" + r.Event.Start.UTC().Format(time.RFC3339Nano)
		if _, dup := m[k]; dup {
			t.Errorf("two flow IDs for %s", k)
		}
		m[k] += r.Network.Packets
	}
	return m
}

// compareFlowSets reports differences between the offline run and the
// collector's records.
func compareFlowSets(t *testing.T, what string, want, got map[string]uint64) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (%d packets)", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %d packets, offline %d", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (%d packets)", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s: %d of %d flows differ from the offline run:\n%s", what, len(diffs), len(want),
			strings.Join(diffs[:min(len(diffs), 20)], "\n"))
	}
}

// collectorFlows lists the collector's records of one sensor over the
// capture's time span.
func collectorFlows(t *testing.T, col *collector, frames []frame, sensorID string) map[string]uint64 {
	t.Helper()
	var recs []ecsFlow
	for _, w := range windows(frames) {
		recs = append(recs, col.flows(t, w)...)
	}
	return flowPackets(t, dedupeWindows(t, recs), sensorID)
}

// dedupeWindows drops the copies of a record that several windows list;
// two different records with one flow ID and segment are an error.
func dedupeWindows(t *testing.T, recs []ecsFlow) []ecsFlow {
	t.Helper()
	seen := map[string]ecsFlow{}
	var out []ecsFlow
	for _, r := range recs {
		k := fmt.Sprintf("%s/%d/%s", r.Tapir.FlowID, r.Tapir.Segment, r.Tapir.SensorID)
		if prev, ok := seen[k]; ok {
			if prev.Network.Packets != r.Network.Packets || prev.Event.Reason != r.Event.Reason {
				t.Errorf("flow %s segment %d (%s) listed twice with different contents: %d packets %s / %d packets %s",
					r.Tapir.FlowID, r.Tapir.Segment, r.Network.CommunityID, prev.Network.Packets, prev.Event.Reason,
					r.Network.Packets, r.Event.Reason)
			}
			continue
		}
		seen[k] = r
		out = append(out, r)
	}
	return out
}

// spotCheckPcaps fetches n flows' pcaps spread over the capture and
// compares them with tshark's frames (duplicates would show as extra
// frames).
func spotCheckPcaps(t *testing.T, col *collector, frames []frame, n int) {
	t.Helper()
	byCID := map[string][]frame{}
	var cids []string
	for _, f := range frames {
		if f.cid == "" {
			continue
		}
		if byCID[f.cid] == nil {
			cids = append(cids, f.cid)
		}
		byCID[f.cid] = append(byCID[f.cid], f)
	}
	dir := t.TempDir()
	checked := 0
	for i := 0; i < len(cids) && checked < n; i += max(1, len(cids)/n) {
		cid := cids[i]
		out := filepath.Join(dir, fmt.Sprintf("%d.pcap", i))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := col.pcap(ctx, cid, out)
		cancel()
		if err != nil {
			t.Errorf("flow %s: %v", cid, err)
			continue
		}
		got, _ := readFrames(t, out)
		if d := diffFrames(byCID[cid], got, false); d != "" {
			t.Errorf("flow %s (%s): %s", cid, firstTuple(byCID[cid], cid), d)
		}
		checked++
	}
	t.Logf("spot-checked %d flows' pcaps against tshark", checked)
}

// TestCollectorSIGKILLMidReplay kills the collector with SIGKILL while a
// sensor streams the largest shared capture in small batches, restarts it
// on the same store and ports, and checks that the sensor reconnects and
// resends so that every flow record and packet is present exactly once.
func TestCollectorSIGKILLMidReplay(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	file := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "replay")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	cfg := filepath.Join(work, "sensor.yaml")
	if err := os.WriteFile(cfg, []byte(smallBatches), 0o644); err != nil {
		t.Fatal(err)
	}
	want := offlineFlows(t, file, "replay")

	args := append([]string{"-r", file, "--config", cfg}, col.sensorArgs("replay", filepath.Join(work, "spool"))...)
	sensor := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)
	deadline := time.Now().Add(60 * time.Second)
	var stored float64
	for {
		stored = col.metric(t, "tapir_collector_ingest_batches_total", `result="stored"`)
		if stored >= 3 || sensor.Exited() || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sensor.Exited() {
		t.Fatalf("the sensor finished before the collector could be killed (%v batches stored):\n%s", stored, sensor.Log.String())
	}
	col.proc.Kill()
	t.Logf("collector SIGKILLed after %v stored batches", stored)
	time.Sleep(time.Second)
	col.start()
	code, ok := sensor.Wait(90 * time.Second)
	if !ok || code != 0 || strings.Contains(sensor.Log.String(), "not acknowledged everything") {
		t.Fatalf("sensor exit %d (finished %v):\n%s", code, ok, e2etest.LastLines(sensor.Log.String(), 15))
	}
	if !strings.Contains(sensor.Log.String(), "reconnecting") {
		t.Errorf("the sensor never noticed the collector going away:\n%s", e2etest.LastLines(sensor.Log.String(), 10))
	}
	t.Logf("after the restart: %v batches stored, %v duplicates dropped",
		col.metric(t, "tapir_collector_ingest_batches_total", `result="stored"`),
		col.metric(t, "tapir_collector_ingest_batches_total", `result="duplicate"`))

	frames, _ := readFrames(t, file)
	got := collectorFlows(t, col, frames, "replay")
	compareFlowSets(t, "after SIGKILL", want, got)
	t.Logf("%d flows compared with the offline run", len(want))
	spotCheckPcaps(t, col, frames, 6)
}

// TestCollectorDownThenUp starts a sensor while no collector listens (it
// spools), starts the collector seconds later, and checks that everything
// arrives exactly once. Then a sensor run ends with the collector down and
// data left in its spool, and a second run with the same spool delivers
// it.
func TestCollectorDownThenUp(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "late", "restart")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ingest, col.api, col.mets = freePort(t), freePort(t), freePort(t)

	file := testenv.Pcap(t, "zeek/ssh.pcap")
	want := offlineFlows(t, file, "late")
	args := append([]string{"-r", file}, col.sensorArgs("late", filepath.Join(work, "spool-late"))...)
	sensor := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)
	time.Sleep(3 * time.Second)
	if sensor.Exited() {
		t.Fatalf("the sensor exited with no collector:\n%s", sensor.Log.String())
	}
	col.start()
	code, ok := sensor.Wait(90 * time.Second)
	if !ok || code != 0 || strings.Contains(sensor.Log.String(), "not acknowledged everything") {
		t.Fatalf("sensor exit %d (finished %v):\n%s", code, ok, e2etest.LastLines(sensor.Log.String(), 15))
	}
	frames, _ := readFrames(t, file)
	compareFlowSets(t, "collector started late", want, collectorFlows(t, col, frames, "late"))
	spotCheckPcaps(t, col, frames, 4)

	// Sensor restart: the first run gives up with the collector down.
	col.proc.Stop(10 * time.Second)
	spool := filepath.Join(work, "spool-restart")
	first := testenv.Pcap(t, "zeek/wikipedia.pcap")
	wantFirst := offlineFlows(t, first, "restart")
	args = append([]string{"-r", first, "--drain-timeout", "2s"}, col.sensorArgs("restart", spool)...)
	run1 := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)
	run1.Wait(60 * time.Second)
	if !strings.Contains(run1.Log.String(), "not acknowledged everything") {
		t.Fatalf("the first run did not leave data in the spool:\n%s", e2etest.LastLines(run1.Log.String(), 10))
	}
	col.start()
	second := testenv.Pcap(t, "zeek/get.pcap")
	wantSecond := offlineFlows(t, second, "restart")
	args = append([]string{"-r", second}, col.sensorArgs("restart", spool)...)
	run2 := startProc(t, append(append([]string{bin.sensor}, args...), longTimeouts...)...)
	code, ok = run2.Wait(90 * time.Second)
	if !ok || code != 0 || strings.Contains(run2.Log.String(), "not acknowledged everything") {
		t.Fatalf("second run: exit %d (finished %v):\n%s", code, ok, e2etest.LastLines(run2.Log.String(), 15))
	}
	framesFirst, _ := readFrames(t, first)
	compareFlowSets(t, "spooled by the first run", wantFirst, collectorFlows(t, col, framesFirst, "restart"))
	framesSecond, _ := readFrames(t, second)
	compareFlowSets(t, "second run", wantSecond, collectorFlows(t, col, framesSecond, "restart"))
	spotCheckPcaps(t, col, framesFirst, 3)
}
