package e2etest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api"
)

// CollectorOptions describe the tapir-collector StartCollector starts:
// by default on the embedded Pebble store, retention by age off (the
// shared captures are years old), plaintext ingest and API, an audit log
// and metrics, all on loopback.
type CollectorOptions struct {
	// Dir holds the configuration, the store, the tokens file and the
	// audit log; a new temporary directory when "".
	Dir string
	// TLSDir holds the server's ca.pem, server.pem and server-key.pem
	// (tapir certs init and server) for mTLS ingest and a TLS API;
	// plaintext when "".
	TLSDir string
	// FixedPorts has the collector listen on ports chosen before its
	// start, so that a restart keeps its addresses; otherwise it listens
	// on 127.0.0.1:0.
	FixedPorts bool
	// Tokens maps the subjects of API tokens to their roles (such as
	// "[flows:read, pcap:read]"); a token is drawn for each.
	Tokens map[string]string
	// GeoIP and ASN are enrichment files; enrichment is off without them.
	GeoIP, ASN []string
	// HBase, when set, is the store instead of Pebble.
	HBase *HBaseOptions
	// Kafka, when set, is where flows, health and alerts are published.
	Kafka *KafkaOptions
	// OpenSearch, when set, is where the flows published to Kafka are
	// indexed.
	OpenSearch *OpenSearchOptions
}

// HBaseOptions are the collector's HBase store.
type HBaseOptions struct {
	// ZooKeeper is HBase's ZooKeeper (host:port).
	ZooKeeper string
	// Table is the table, created by the collector.
	Table string
}

// KafkaOptions are the Kafka the collector publishes to.
type KafkaOptions struct {
	// Broker is the bootstrap broker (host:port).
	Broker string
	// Topics are the flows, health and alerts topics.
	Topics [3]string
}

// OpenSearchOptions are the OpenSearch the collector indexes flows into.
type OpenSearchOptions struct {
	// URL is the node's URL.
	URL string
	// IndexPrefix starts the daily indices' names.
	IndexPrefix string
	// ConsumerGroup is the indexer's Kafka consumer group.
	ConsumerGroup string
}

// Collector is a tapir-collector started by StartCollector.
type Collector struct {
	t   testing.TB
	bin string
	// Config is the configuration file; Start reads it again.
	Config string
	// Audit is the API's audit log.
	Audit string
	// Ingest, API and Metrics are the addresses (host:port) the running
	// collector listens on.
	Ingest, API, Metrics string
	// Tokens maps the subjects of CollectorOptions.Tokens to their tokens.
	Tokens map[string]string
	// Proc is the running collector.
	Proc *Proc
}

// collectorStartTimeout bounds the wait for a collector's listeners (an
// HBase store can take minutes to answer).
const collectorStartTimeout = 3 * time.Minute

// StartCollector writes the configuration o describes and starts the
// tapir-collector binary bin with it, waiting until it listens; the
// collector is killed when the test ends.
func StartCollector(t testing.TB, bin string, o CollectorOptions) *Collector {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &Collector{t: t, bin: bin, Config: filepath.Join(dir, "collector.yaml"), Audit: filepath.Join(dir, "audit.jsonl"),
		Tokens: map[string]string{}}
	tokensFile := c.writeTokens(dir, o.Tokens)
	if err := os.WriteFile(c.Config, []byte(o.yaml(t, dir, tokensFile, c.Audit)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Start()
	return c
}

// writeTokens draws a token for each subject and writes their hashes and
// roles to dir/tokens.yaml, which it returns ("" without tokens).
func (c *Collector) writeTokens(dir string, roles map[string]string) string {
	c.t.Helper()
	if len(roles) == 0 {
		return ""
	}
	subjects := make([]string, 0, len(roles))
	for s := range roles {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	var b strings.Builder
	for _, s := range subjects {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			c.t.Fatal(err)
		}
		c.Tokens[s] = hex.EncodeToString(raw)
		fmt.Fprintf(&b, "%q:\n  subject: %s\n  roles: %s\n", api.HashToken(c.Tokens[s]), s, roles[s])
	}
	path := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// yaml returns the collector configuration.
func (o CollectorOptions) yaml(t testing.TB, dir, tokensFile, audit string) string {
	listen := func() string {
		if o.FixedPorts {
			return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		}
		return "127.0.0.1:0"
	}
	tls := "{insecure: true}"
	if o.TLSDir != "" {
		tls = fmt.Sprintf("{ca: %s, cert: %s, key: %s}", filepath.Join(o.TLSDir, "ca.pem"),
			filepath.Join(o.TLSDir, "server.pem"), filepath.Join(o.TLSDir, "server-key.pem"))
	}
	var b strings.Builder
	b.WriteString(o.storeYAML(dir))
	b.WriteString("retention:\n  max_age: 0s\n")
	fmt.Fprintf(&b, "ingest:\n  listen: %s\n  tls: %s\n", listen(), tls)
	fmt.Fprintf(&b, "api:\n  listen: %s\n  tls: %s\n", listen(), tls)
	if tokensFile != "" {
		fmt.Fprintf(&b, "  tokens_file: %s\n", tokensFile)
	}
	fmt.Fprintf(&b, "  audit_file: %s\n  audit_sync: false\n", audit)
	fmt.Fprintf(&b, "metrics:\n  listen: %s\n", listen())
	if len(o.GeoIP) > 0 || len(o.ASN) > 0 {
		fmt.Fprintf(&b, "enrich:\n  geoip: {enabled: %t, files: %s}\n  asn: {enabled: %t, files: %s}\n",
			len(o.GeoIP) > 0, jsonList(o.GeoIP), len(o.ASN) > 0, jsonList(o.ASN))
	}
	if k := o.Kafka; k != nil {
		fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  topics: {flows: %s, health: %s, alerts: %s}\n"+
			"  partitions: 3\n  timeout: 5s\n  health_interval: 2s\n", k.Broker, k.Topics[0], k.Topics[1], k.Topics[2])
	}
	if s := o.OpenSearch; s != nil {
		fmt.Fprintf(&b, "opensearch:\n  urls: [%q]\n  index_prefix: %s\n  consumer_group: %s\n  retention_days: 0\n"+
			"  retry_min: 100ms\n  retry_max: 2s\n  request_timeout: 10s\n", s.URL, s.IndexPrefix, s.ConsumerGroup)
	}
	return b.String()
}

// storeYAML returns the store section: Pebble, or HBase, in dir/store.
func (o CollectorOptions) storeYAML(dir string) string {
	store := filepath.Join(dir, "store")
	if o.HBase == nil {
		return fmt.Sprintf("store:\n  dir: %s\n", store)
	}
	return fmt.Sprintf("store:\n  backend: hbase\n  dir: %s\n  hbase: {zookeeper: %q, table: %s, salt_regions: 4, op_timeout: 8s}\n",
		store, o.HBase.ZooKeeper, o.HBase.Table)
}

// jsonList writes v as a flow-style YAML (JSON) list.
func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// listening matches the collector's log lines saying where it listens.
var listening = regexp.MustCompile(`msg="(ingest|api|metrics) listening" (?:component=\S+ )?addr=(\S+)`)

// Start starts the collector with its configuration file (again, after
// a Stop or Kill of Proc) and waits until its ingest, API and metrics
// listen; it fails the test when the collector exits or does not listen
// within three minutes.
func (c *Collector) Start() {
	c.t.Helper()
	c.Proc = Start(c.t, c.bin, "--config", c.Config, "--log-level", "info")
	for deadline := time.Now().Add(collectorStartTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		addrs := map[string]string{}
		for _, m := range listening.FindAllStringSubmatch(c.Proc.Log.String(), -1) {
			addrs[m[1]] = m[2]
		}
		if addrs["ingest"] != "" && addrs["api"] != "" && addrs["metrics"] != "" {
			c.Ingest, c.API, c.Metrics = addrs["ingest"], addrs["api"], addrs["metrics"]
			return
		}
		if c.Proc.Exited() {
			break
		}
	}
	c.t.Fatalf("collector did not start:\n%s", c.Proc.Log.String())
}

// Metric returns the sum of the collector's samples of the metric name
// whose label text contains labels (see Metric), -1 when its metrics do
// not answer.
func (c *Collector) Metric(name, labels string) float64 {
	v, err := Metric(c.Metrics, name, labels)
	if err != nil {
		return -1
	}
	return v
}

// WaitMetric waits up to d until the collector's metric (as Metric sums
// it) reaches at least v, and reports whether it did.
func (c *Collector) WaitMetric(name, labels string, v float64, d time.Duration) bool {
	return WaitMetric(c.Metrics, name, labels, v, d)
}
