package e2eservices

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// replayCapture has 82582 packets in 500 TCP connections (zeek's
// echo-connections trace): several batches, many flows.
const replayCapture = "zeek/echo-connections.pcap.gz"

// TestServices runs the replay scenarios on one private Kafka and HBase,
// one after the other (each on its own table, topics and sensor id).
func TestServices(t *testing.T) {
	if bin.Err != nil {
		t.Fatal(bin.Err)
	}
	testenv.Tool(t, "tshark")
	s := startServices(t)
	capture := testenv.Plain(t, testenv.Pcap(t, replayCapture))
	packets := tsharkCount(t, capture)
	t.Run("Steady", func(t *testing.T) { replay(t, s, capture, packets, "steady", nil) })
	t.Run("KafkaStopped", func(t *testing.T) {
		replay(t, s, capture, packets, "kafka-out", func(t *testing.T, c *collector) {
			s.MustScript("kafka/stop.sh", "--kill", "--keep-data")
			defer s.MustScript("kafka/start.sh", "--resume") // also when a check fails
			// The collector stops acking: batches fail (publish timeout, a
			// store_error) or wait in the producer (buffered records), and
			// no batch is stored meanwhile.
			stored := c.Metric("tapir_collector_ingest_batches_total", `result="stored"`)
			deadline := time.Now().Add(2 * time.Minute)
			for c.Metric("tapir_collector_ingest_batches_total", `result="store_error"`) < 1 &&
				c.Metric("tapir_kafka_buffered_records", "") < 1 {
				if time.Now().After(deadline) {
					t.Fatalf("with Kafka down the collector shows no refused or waiting batch:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20))
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(5 * time.Second)
			if now := c.Metric("tapir_collector_ingest_batches_total", `result="stored"`); now != stored {
				t.Fatalf("with Kafka down the collector acked batches: stored %v -> %v", stored, now)
			}
		})
	})
	t.Run("HBaseStopped", func(t *testing.T) {
		replay(t, s, capture, packets, "hbase-out", func(t *testing.T, c *collector) {
			s.MustScript("hbase/stop.sh", "--keep-data")
			defer s.MustScript("hbase/start.sh", "--resume")
			if !c.WaitMetric("tapir_collector_ingest_batches_total", `result="store_error"`, 1, 2*time.Minute) {
				t.Fatalf("with HBase down the collector never refused a batch:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20))
			}
		})
	})
	t.Run("CollectorKilled", func(t *testing.T) {
		replay(t, s, capture, packets, "collector-kill", func(t *testing.T, c *collector) {
			c.Proc.Kill() // SIGKILL while writing to both
			time.Sleep(2 * time.Second)
			c.Start()
		})
	})
}

func tsharkCount(t *testing.T, capture string) int {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-r", capture, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	return bytes.Count(out, []byte("\n"))
}

// replay streams the capture through a sensor to a new collector, calls
// outage once the collector stored the first batch, waits until the sensor
// got every batch acknowledged, and checks Kafka and the pcaps.
func replay(t *testing.T, s *services, capture string, packets int, sensorID string, outage func(*testing.T, *collector)) {
	work := t.TempDir()
	// What the sensor reports for this capture, offline.
	oracle := filepath.Join(work, "oracle.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin.Sensor, "-r", capture, "--sensor-id", sensorID, "--flows-out", oracle).CombinedOutput(); err != nil {
		t.Fatalf("offline sensor run: %v\n%s", err, out)
	}
	want := map[string]ecsFlow{}
	for _, f := range parseFlowsFile(t, oracle) {
		want[f.id()] = f
	}
	if len(want) < 500 {
		t.Fatalf("offline run reported %d flow records", len(want))
	}

	c := newCollector(t, s, sensorID)
	sensor := e2etest.Start(t, bin.Sensor, "-r", capture, "--sensor-id", sensorID, "--collector", c.Ingest,
		"--insecure", "--spool-dir", filepath.Join(work, "spool"), "--drain-timeout", "5m", "--log-level", "info")
	if outage != nil {
		if !c.WaitMetric("tapir_collector_ingest_batches_total", `result="stored"`, 1, 2*time.Minute) {
			t.Fatalf("no batch stored:\n%s\nsensor:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20), e2etest.LastLines(sensor.Log.String(), 20))
		}
		outage(t, c)
	}
	code, done := sensor.Wait(6 * time.Minute)
	slog := sensor.Log.String()
	if !done || code != 0 || strings.Contains(slog, "has not acknowledged everything") {
		t.Fatalf("sensor (exit %d, done %v) did not get everything acknowledged:\n%s\ncollector:\n%s",
			code, done, e2etest.LastLines(slog, 30), e2etest.LastLines(c.Proc.Log.String(), 30))
	}

	// The completeness checks below hold only if retention removed
	// nothing (the capture is years old: see newCollector).
	if n := c.Metric("tapir_retention_blocks_expired_total", ""); n != 0 {
		t.Fatalf("retention removed %v packet blocks of the replayed capture (want none):\n%s", n, e2etest.LastLines(c.Proc.Log.String(), 20))
	}

	// The flows topic from the beginning: every record of the offline run,
	// once after dedupe by (flow id, segment), keyed by its Community ID.
	recs := kafkatest.ReadAll(t, []string{s.kafka}, c.topics[0], len(want), 3*time.Second, 3*time.Minute)
	got := map[string]ecsFlow{}
	dups := 0
	for _, r := range recs {
		fs := parseFlows(t, r.Value)
		if len(fs) != 1 {
			t.Fatalf("kafka record holds %d flow records", len(fs))
		}
		f := fs[0]
		if string(r.Key) != f.Network.CommunityID && f.Network.CommunityID != "" {
			t.Fatalf("record %s keyed %q, community id %q", f.id(), r.Key, f.Network.CommunityID)
		}
		if _, ok := got[f.id()]; ok {
			dups++
		}
		got[f.id()] = f
	}
	t.Logf("%s: %d records in Kafka, %d distinct (flow, segment), %d duplicates (at-least-once); offline run %d",
		sensorID, len(recs), len(got), dups, len(want))
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Fatalf("flow record %s (community id %s) missing from Kafka", id, w.Network.CommunityID)
		}
		if g.Network.Packets != w.Network.Packets || g.Network.Bytes != w.Network.Bytes || g.Network.CommunityID != w.Network.CommunityID {
			t.Fatalf("flow record %s: kafka %+v, offline %+v", id, g.Network, w.Network)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("Kafka has %d distinct flow records, the offline run %d", len(got), len(want))
	}
	// kcat, an outside client, sees the same records.
	lines := kafkatest.Kcat(t, []string{s.kafka}, c.topics[0])
	if len(lines) != len(recs) {
		t.Fatalf("kcat read %d records, franz-go %d", len(lines), len(recs))
	}

	// Every flow's pcap from HBase holds the packets its final record
	// says were stored, and all of them add up to tshark's count. (The
	// records from Kafka: they carry this run's flow IDs.)
	final := map[string]ecsFlow{}
	for _, f := range got {
		if p, ok := final[f.Tapir.FlowID]; !ok || f.Tapir.Segment > p.Tapir.Segment {
			final[f.Tapir.FlowID] = f
		}
	}
	var mu sync.Mutex
	var total int
	var firstErr error
	ids := make(chan ecsFlow)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range ids {
				n, err := c.pcapPackets(f.Tapir.FlowID)
				want := f.Tapir.Source.StoredPackets + f.Tapir.Destination.StoredPackets
				if err == nil && uint64(n) != want {
					err = fmt.Errorf("flow %s: pcap has %d packets, its record says %d stored", f.Tapir.FlowID, n, want)
				}
				mu.Lock()
				total += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range final {
		ids <- f
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if total != packets {
		t.Fatalf("the pcaps of %d flows hold %d packets, tshark counts %d in the capture", len(final), total, packets)
	}
}

func parseFlowsFile(t *testing.T, path string) []ecsFlow {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseFlows(t, b)
}

// pcapPackets fetches a flow's pcap and counts its packets.
func (c *collector) pcapPackets(flowID string) (int, error) {
	b, err := c.pcap(flowID)
	if err != nil {
		return 0, err
	}
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("flow %s: %w", flowID, err)
	}
	n := 0
	for {
		_, _, err := r.ReadPacketData()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("flow %s packet %d: %w", flowID, n, err)
		}
		n++
	}
}
