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

	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage/hbase/hbasetest"
)

var bin e2etest.Binaries

func TestMain(m *testing.M) {
	e2etest.Main(m, &bin, "tapir-e2es-bin-", "./cmd/tapir-collector", "./cmd/tapir-sensor")
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
	*e2etest.Collector
	token, table string
	topics       [3]string
}

// newCollector starts a collector with its own HBase table and Kafka
// topics. Retention by age is off, as in systest/e2e: the replayed
// capture is from 2021, so the default 7 days would remove its packets at
// the first retention run of a collector holding any (every collector
// runs one at start, so a restarted one would empty the table).
func newCollector(t *testing.T, s *services, name string) *collector {
	t.Helper()
	bin.Need(t)
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	c := &collector{table: "e2e_" + suffix,
		topics: [3]string{"e2e-" + suffix + ".flows", "e2e-" + suffix + ".health", "e2e-" + suffix + ".alerts"}}
	c.Collector = e2etest.StartCollector(t, bin.Collector, e2etest.CollectorOptions{Dir: filepath.Join(t.TempDir(), name),
		FixedPorts: true, Tokens: map[string]string{"e2e": "[flows:read, pcap:read]"},
		HBase: &e2etest.HBaseOptions{ZooKeeper: s.zk, Table: c.table}, Kafka: &e2etest.KafkaOptions{Broker: s.kafka, Topics: c.topics}})
	c.token = c.Tokens["e2e"]
	return c
}

// pcap fetches a flow's pcap from the API.
func (c *collector) pcap(flowID string) ([]byte, error) {
	req, _ := http.NewRequest("GET", "http://"+c.API+"/api/v1/pcap?flow="+flowID, nil)
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
