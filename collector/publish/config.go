package publish

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record formats of the flows topic.
const (
	FormatECS      = "ecs-json" // flow.Record.MarshalJSON: ECS JSON, one object per record
	FormatProtobuf = "protobuf" // tapir.v1.FlowRecord (proto/tapirv1/tapir.proto)
)

// Topics names the topics the collector produces to.
type Topics struct {
	// Flows receives every flow record (each report of a flow: updates
	// and the final record), keyed by Community ID.
	Flows string `yaml:"flows"`
	// Health receives each sensor's status and counters, keyed by sensor
	// ID, every HealthInterval.
	Health string `yaml:"health"`
	// Alerts receives alerts (JSON), keyed by Community ID when they name
	// one.
	Alerts string `yaml:"alerts"`
}

// Config configures a Publisher. Brokers empty disables publishing.
type Config struct {
	// Brokers are seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// ClientID names the producer in the brokers' logs and quotas.
	ClientID string `yaml:"client_id"`
	Topics   Topics `yaml:"topics"`
	// Format of the flows topic: ecs-json (default) or protobuf.
	Format string `yaml:"format"`
	// CreateTopics creates missing topics with Partitions partitions and
	// ReplicationFactor replicas (-1: the broker's default).
	CreateTopics      bool  `yaml:"create_topics"`
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Compression of produced batches: zstd, lz4, snappy, gzip or none.
	Compression string `yaml:"compression"`
	// Linger is how long a partition's batch waits for more records.
	Linger time.Duration `yaml:"linger"`
	// BatchMaxBytes caps one partition's batch (the broker's
	// max.message.bytes must allow it).
	BatchMaxBytes int32 `yaml:"batch_max_bytes"`
	// MaxBufferedRecords bounds the records waiting for acknowledgement
	// (Publish blocks, within its timeout, when full).
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// Timeout bounds one Publish call: when Kafka has not acknowledged
	// every record by then, Publish fails, the collector does not ack the
	// batch, and the sensor resends it later.
	Timeout time.Duration `yaml:"timeout"`
	// HealthInterval is how often sensor health is published.
	HealthInterval time.Duration `yaml:"health_interval"`
}

// DefaultConfig returns the defaults (publishing disabled: no brokers).
func DefaultConfig() Config {
	return Config{
		ClientID:           "tapir-collector",
		Topics:             Topics{Flows: "tapir.flows", Health: "tapir.sensor-health", Alerts: "tapir.alerts"},
		Format:             FormatECS,
		CreateTopics:       true,
		Partitions:         6,
		ReplicationFactor:  -1,
		Compression:        "zstd",
		Linger:             5 * time.Millisecond,
		BatchMaxBytes:      1 << 20,
		MaxBufferedRecords: 100_000,
		Timeout:            30 * time.Second,
		HealthInterval:     10 * time.Second,
	}
}

// Enabled reports whether brokers are configured.
func (c *Config) Enabled() bool { return len(c.Brokers) > 0 }

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	for _, t := range []struct{ name, v string }{{"topics.flows", c.Topics.Flows}, {"topics.health", c.Topics.Health}, {"topics.alerts", c.Topics.Alerts}} {
		if t.v == "" || len(t.v) > 249 || strings.ContainsAny(t.v, " /\\,:") {
			errs = append(errs, fmt.Errorf("%s %q: not a valid topic name", t.name, t.v))
		}
	}
	if c.Format != FormatECS && c.Format != FormatProtobuf {
		errs = append(errs, fmt.Errorf("format %q: %s or %s", c.Format, FormatECS, FormatProtobuf))
	}
	if c.Partitions < 1 && c.Partitions != -1 {
		errs = append(errs, fmt.Errorf("partitions %d: positive or -1 (broker default)", c.Partitions))
	}
	if c.ReplicationFactor < 1 && c.ReplicationFactor != -1 {
		errs = append(errs, fmt.Errorf("replication_factor %d: positive or -1 (broker default)", c.ReplicationFactor))
	}
	if _, err := codec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		errs = append(errs, fmt.Errorf("linger %v: within 0..1s", c.Linger))
	}
	if c.BatchMaxBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("batch_max_bytes %d: at least 1 KiB", c.BatchMaxBytes))
	}
	if c.MaxBufferedRecords < 1 {
		errs = append(errs, fmt.Errorf("max_buffered_records %d: must be positive", c.MaxBufferedRecords))
	}
	if c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("timeout %v: at least 1s", c.Timeout))
	}
	if c.HealthInterval < time.Second {
		errs = append(errs, fmt.Errorf("health_interval %v: at least 1s", c.HealthInterval))
	}
	return errors.Join(errs...)
}
