package e2eservices

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage/hbase/hbasetest"
)

var bin struct {
	collector, sensor string
	err               error
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := e2etest.Build("tapir-e2es-bin-", "./cmd/tapir-collector", "./cmd/tapir-sensor")
		if dir == "" {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.err = err
		bin.collector = filepath.Join(dir, "tapir-collector")
		bin.sensor = filepath.Join(dir, "tapir-sensor")
		return m.Run()
	}()
	os.Exit(code)
}

// services are a private Kafka and HBase started with the deploy scripts.
type services struct {
	*e2etest.Services
	kafka, zk string
}

// startServices starts a private single-node Kafka and standalone HBase
// on free loopback ports; t.Cleanup stops them (keeping their logs in the
// test's output when it failed).
func startServices(t *testing.T) *services {
	t.Helper()
	kafkatest.Brokers(t) // skip or fail when this machine is not set up for services
	hbasetest.ZooKeeper(t)
	testenv.Tool(t, "java")
	testenv.Tool(t, "kcat")
	s := &services{}
	kp, kc, zk := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	s.kafka, s.zk = fmt.Sprintf("127.0.0.1:%d", kp), fmt.Sprintf("127.0.0.1:%d", zk)
	s.Services = e2etest.StartServices(t, []string{
		fmt.Sprintf("TAPIR_KAFKA_PORT=%d", kp), fmt.Sprintf("TAPIR_KAFKA_CTRL_PORT=%d", kc), "TAPIR_KAFKA=" + s.kafka,
		fmt.Sprintf("TAPIR_HBASE_ZK_PORT=%d", zk), fmt.Sprintf("TAPIR_HBASE_MASTER_PORT=%d", e2etest.FreePort(t)),
		fmt.Sprintf("TAPIR_HBASE_INFO_PORT=%d", e2etest.FreePort(t)), fmt.Sprintf("TAPIR_HBASE_RS_PORT=%d", e2etest.FreePort(t)),
		"TAPIR_HBASE_HEAP=768m", "TAPIR_KAFKA_HEAP=512m"},
		"kafka", "hbase")
	return s
}

// collector is a tapir-collector on the HBase store publishing to Kafka,
// plaintext on loopback (TLS is covered by the collector's own tests).
type collector struct {
	t                    testing.TB
	dir, config          string
	ingest, api, metrics string
	token, table         string
	topics               [3]string
	proc                 *e2etest.Proc
}

func newCollector(t *testing.T, s *services, name string) *collector {
	t.Helper()
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	c := &collector{t: t, dir: dir, config: filepath.Join(dir, "collector.yaml"),
		ingest: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)), api: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)),
		metrics: fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)), table: "e2e_" + suffix,
		topics: [3]string{"e2e-" + suffix + ".flows", "e2e-" + suffix + ".health", "e2e-" + suffix + ".alerts"}}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	c.token = hex.EncodeToString(tok)
	tokens := fmt.Sprintf("%q:\n  subject: e2e\n  roles: [flows:read, pcap:read]\n", api.HashToken(c.token))
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	// Retention by age is off, as in systest/e2e: the replayed capture
	// is from 2021, so the default 7 days would remove its packets at the
	// first retention run of a collector holding any (every collector runs
	// one at start, so a restarted one would empty the table).
	cfg := fmt.Sprintf(`store:
  backend: hbase
  dir: %s
  hbase: {zookeeper: "%s", table: %s, salt_regions: 4, op_timeout: 8s}
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
kafka:
  brokers: ["%s"]
  topics: {flows: %s, health: %s, alerts: %s}
  partitions: 3
  timeout: 5s
  health_interval: 2s
`, filepath.Join(dir, "state"), s.zk, c.table, c.ingest, c.api, filepath.Join(dir, "tokens.yaml"),
		filepath.Join(dir, "audit.jsonl"), c.metrics, s.kafka, c.topics[0], c.topics[1], c.topics[2])
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start()
	return c
}

// start starts the collector and waits until its API answers.
func (c *collector) start() {
	c.t.Helper()
	c.proc = e2etest.Start(c.t, bin.collector, "--config", c.config, "--log-level", "info")
	c.proc.WaitLog(c.t, `msg="api listening"`, 3*time.Minute)
}

// metric sums the samples of a metric whose labels contain labels.
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

// pcap fetches a flow's pcap from the API.
func (c *collector) pcap(flowID string) ([]byte, error) {
	req, _ := http.NewRequest("GET", "http://"+c.api+"/api/v1/pcap?flow="+flowID, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("pcap %s: %s: %s", flowID, resp.Status, b)
	}
	return b, err
}

// ecsFlow is the part of a flow record the tests compare.
type ecsFlow struct {
	Network struct {
		CommunityID string `json:"community_id"`
		EtherType   string `json:"ethertype"`
		Packets     uint64 `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Source, Destination struct {
		MAC string `json:"mac"`
	}
	Event struct {
		Start  time.Time `json:"start"`
		Reason string    `json:"reason"`
	} `json:"event"`
	Tapir struct {
		FlowID  string `json:"flow_id"`
		Segment uint32 `json:"segment"`
		Final   bool   `json:"final"`
		Source  struct {
			StoredPackets uint64 `json:"stored_packets"`
		} `json:"source"`
		Destination struct {
			StoredPackets uint64 `json:"stored_packets"`
		} `json:"destination"`
	} `json:"tapir"`
}

// id names a flow report the same way in every run over the same
// capture: Community ID (link-layer pseudo flows: MACs and EtherType),
// first-seen time and segment. Flow IDs cannot: every sensor run draws
// new ones.
func (f *ecsFlow) id() string {
	name := f.Network.CommunityID
	if name == "" {
		name = "link:" + f.Source.MAC + ">" + f.Destination.MAC + "/" + f.Network.EtherType
	}
	return fmt.Sprintf("%s@%s/%d", name, f.Event.Start.UTC().Format(time.RFC3339Nano), f.Tapir.Segment)
}

func parseFlows(t testing.TB, b []byte) []ecsFlow {
	t.Helper()
	return e2etest.JSONLines[ecsFlow](t, b)
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
