package opensearch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// outageCapture has 82582 packets in 500 TCP connections (zeek's
// echo-connections trace): many batches over the replay.
var outageCapture = capture{"zeek/echo-connections.pcap.gz", "2021-07-25"}

// TestOutages: Kafka killed and then OpenSearch stopped in the middle of a
// replay, each started again on its data (deploy scripts): afterwards the
// index holds every flow exactly once with its latest record, nothing was
// dropped, and the indexer did retry.
func TestOutages(t *testing.T) {
	s := startServices(t)
	c := newCollector(t, s, "outages")
	capture := testenv.Plain(t, testenv.Pcap(t, outageCapture.path))
	// Updates every 500 ms of packet time: each flow has several
	// segments, and the index must end on the latest.
	sensorCfg := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(sensorCfg, []byte("flows:\n  update_interval: 500ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.replay(t, capture, "os-outages", func() {
		kafkaOutage(t, s, c)
		openSearchOutage(t, s, c)
	}, "--config", sensorCfg)
	recs := c.flows(t, outageCapture, "")
	last := latest(recs)
	n, updated := len(last), 0
	for _, r := range last {
		if segment(r) >= 1 {
			updated++
		}
	}
	if n < 500 || updated < n/2 {
		t.Fatalf("tapir flows: %d flow instances, %d past segment 0; want at least 500, most with several segments", n, updated)
	}
	c.waitIndexed(t, n, 3*time.Minute)
	c.checkIndexMatchesFlows(t, recs)
	if d := c.Metric("tapir_searchindex_dropped_total", ""); d != 0 {
		t.Fatalf("%v records dropped", d)
	}
	t.Logf("%d flow instances (%d past segment 0) indexed once each at their latest segment; %v request retries, %v stale segments skipped", n, updated,
		c.Metric("tapir_searchindex_retries_total", `cause="request"`), c.Metric("tapir_searchindex_documents_total", `result="stale"`))
}

// kafkaOutage kills Kafka, waits until the collector refuses or holds
// batches, and starts Kafka again on its data.
func kafkaOutage(t *testing.T, s *services, c *collector) {
	t.Helper()
	s.MustScript("kafka/stop.sh", "--kill", "--keep-data")
	deadline := time.Now().Add(2 * time.Minute)
	for c.Metric("tapir_collector_ingest_batches_total", `result="store_error"`) < 1 &&
		c.Metric("tapir_kafka_buffered_records", "") < 1 {
		if time.Now().After(deadline) {
			s.MustScript("kafka/start.sh", "--resume")
			t.Fatalf("with Kafka down the collector shows no refused or waiting batch:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	s.MustScript("kafka/start.sh", "--resume")
}

// openSearchOutage stops OpenSearch, waits until the indexer retried a
// bulk request, and starts OpenSearch again on its data.
func openSearchOutage(t *testing.T, s *services, c *collector) {
	t.Helper()
	s.MustScript("opensearch/stop.sh", "--keep-data")
	ok := c.WaitMetric("tapir_searchindex_retries_total", `cause="request"`, 1, 2*time.Minute)
	time.Sleep(3 * time.Second)
	s.MustScript("opensearch/start.sh", "--resume")
	if !ok {
		t.Fatalf("with OpenSearch down the indexer never retried:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20))
	}
}
