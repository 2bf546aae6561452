package e2etest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// collectorBin builds tapir-collector for the test.
func collectorBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds tapir-collector")
	}
	dir, err := Build("tapir-e2etest-bin-", "./cmd/tapir-collector")
	if dir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "tapir-collector")
}

// TestCollectorConfigs: every configuration CollectorOptions write passes
// tapir-collector check-config, with the sections the options ask for.
func TestCollectorConfigs(t *testing.T) {
	bin := collectorBin(t)
	tls := t.TempDir()
	for _, f := range []string{"ca.pem", "server.pem", "server-key.pem"} {
		if err := os.WriteFile(filepath.Join(tls, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct {
		o    CollectorOptions
		want []string
	}{
		"pebble": {CollectorOptions{FixedPorts: true}, []string{"store:\n  dir: ", "tls: {insecure: true}", "  audit_sync: false\n"}},
		"tls-tokens": {CollectorOptions{TLSDir: tls, Tokens: map[string]string{"a": "[admin]", "b": "[flows:read]"}},
			[]string{"listen: 127.0.0.1:0", "tls: {ca: " + filepath.Join(tls, "ca.pem"), "tokens_file: "}},
		"services": {CollectorOptions{HBase: &HBaseOptions{ZooKeeper: "127.0.0.1:2181", Table: "t1"},
			Kafka:      &KafkaOptions{Broker: "127.0.0.1:9092", Topics: [3]string{"f", "h", "a"}},
			OpenSearch: &OpenSearchOptions{URL: "http://127.0.0.1:9200", IndexPrefix: "p-", ConsumerGroup: "g"}},
			[]string{"backend: hbase", "table: t1", "topics: {flows: f, health: h, alerts: a}", "index_prefix: p-", "consumer_group: g"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "collector.yaml")
			c2 := &Collector{t: t, Tokens: map[string]string{}}
			text := c.o.yaml(t, dir, c2.writeTokens(dir, c.o.Tokens), filepath.Join(dir, "audit.jsonl"))
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("configuration lacks %q:\n%s", w, text)
				}
			}
			if len(c2.Tokens) != len(c.o.Tokens) {
				t.Errorf("%d tokens for %d subjects", len(c2.Tokens), len(c.o.Tokens))
			}
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "check-config", "--config", cfg).CombinedOutput(); err != nil {
				t.Errorf("check-config: %v\n%s\n%s", err, out, text)
			}
		})
	}
}

// TestStartCollector: StartCollector starts a collector and learns its
// addresses; with FixedPorts a restart after a kill keeps them.
func TestStartCollector(t *testing.T) {
	bin := collectorBin(t)
	for _, fixed := range []bool{false, true} {
		c := StartCollector(t, bin, CollectorOptions{FixedPorts: fixed, Tokens: map[string]string{"x": "[flows:read]"}})
		if c.Ingest == "" || c.API == "" || c.Metrics == "" || c.Tokens["x"] == "" {
			t.Fatalf("fixed %v: ingest %q, API %q, metrics %q, token %q", fixed, c.Ingest, c.API, c.Metrics, c.Tokens["x"])
		}
		if v := c.Metric("tapir_collector_ingest_batches_total", ""); v < 0 {
			t.Errorf("fixed %v: the metrics on %s do not answer", fixed, c.Metrics)
		}
		if !fixed {
			continue
		}
		addrs := [3]string{c.Ingest, c.API, c.Metrics}
		c.Proc.Kill()
		c.Start()
		if got := [3]string{c.Ingest, c.API, c.Metrics}; got != addrs {
			t.Errorf("restarted on %v, first on %v", got, addrs)
		}
	}
}
