package export

import (
	"errors"
	"time"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/sensor/spool"
)

// Interface is one capture interface announced in the Hello.
type Interface struct {
	Name     string `yaml:"name"`
	LinkType uint32 `yaml:"link_type"`
	Snaplen  uint32 `yaml:"snaplen"`
}

// Config of the exporter.
type Config struct {
	// Collectors are the collector addresses (host:port), tried in turn:
	// on a failure the exporter moves to the next one.
	Collectors []string `yaml:"collectors"`
	// TLS is the client side of the mutual TLS (insecure: true for
	// plaintext). ServerName defaults to the dialled host.
	TLS tlsconfig.Config `yaml:"tls"`
	// SensorID must equal the identity of the TLS certificate.
	SensorID     string      `yaml:"sensor_id"`
	Hostname     string      `yaml:"hostname"`
	Version      string      `yaml:"-"`
	Interfaces   []Interface `yaml:"-"`
	Capabilities []string    `yaml:"-"`
	// A batch is sent when it reaches MaxBatchRecords records,
	// MaxBatchBlocks blocks or MaxBatchBytes bytes, or is MaxDelay old.
	MaxBatchRecords int           `yaml:"max_batch_records"`
	MaxBatchBlocks  int           `yaml:"max_batch_blocks"`
	MaxBatchBytes   int           `yaml:"max_batch_bytes"`
	MaxDelay        time.Duration `yaml:"max_delay"`
	// QueueBatches bounds the unacked batches kept in memory; beyond it
	// batches overflow to the spool.
	QueueBatches int `yaml:"queue_batches"`
	// MaxInflight bounds the batches sent and not yet acked.
	MaxInflight int `yaml:"max_inflight"`
	// Spool is the on-disk overflow (Dir is required).
	Spool spool.Config `yaml:"spool"`
	// ReconnectMin and ReconnectMax bound the exponential reconnect
	// backoff (with jitter).
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// HelloTimeout bounds connecting and the Hello exchange.
	HelloTimeout time.Duration `yaml:"hello_timeout"`
	// StatsInterval is how often SensorStats ride along (an empty batch
	// carries them when there is no traffic).
	StatsInterval time.Duration `yaml:"stats_interval"`
	// StopAckTimeout is how long Stop waits for the acks of in-flight
	// batches before spooling what is left (the key was drain_timeout,
	// still read as a deprecated alias; the sensor's --drain-timeout is
	// a different wait: for the whole backlog after reading files).
	StopAckTimeout time.Duration `yaml:"stop_ack_timeout"`
}

// DefaultConfig returns the defaults; Collectors, SensorID,
// TLS and Spool.Dir must still be set.
func DefaultConfig() Config {
	return Config{
		MaxBatchRecords: 4096,
		MaxBatchBlocks:  1024,
		MaxBatchBytes:   4 << 20,
		MaxDelay:        200 * time.Millisecond,
		QueueBatches:    64,
		MaxInflight:     8,
		Spool:           spool.DefaultConfig("spool"),
		ReconnectMin:    200 * time.Millisecond,
		ReconnectMax:    15 * time.Second,
		HelloTimeout:    10 * time.Second,
		StatsInterval:   10 * time.Second,
		StopAckTimeout:  2 * time.Second,
	}
}

// Validate checks the configuration, without the deployment-specific
// fields (collectors, sensor id, TLS); ValidateAll checks those too.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New("export: "+msg))
		}
	}
	check(c.MaxBatchRecords > 0 && c.MaxBatchBlocks > 0 && c.MaxBatchBytes > 0, "batch limits must be positive")
	check(c.MaxDelay > 0, "max_delay must be positive")
	check(c.QueueBatches > 0, "queue_batches must be positive")
	check(c.MaxInflight > 0 && c.MaxInflight <= c.QueueBatches, "max_inflight must be in [1, queue_batches]")
	check(c.ReconnectMin > 0 && c.ReconnectMax >= c.ReconnectMin, "reconnect backoff bounds invalid")
	check(c.HelloTimeout > 0 && c.StatsInterval > 0 && c.StopAckTimeout >= 0, "timeouts must be positive")
	if err := c.Spool.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateAll also checks collectors, sensor id and TLS.
func (c Config) ValidateAll() error {
	var errs []error
	if len(c.Collectors) == 0 {
		errs = append(errs, errors.New("export: at least one collector address is required"))
	}
	if c.SensorID == "" {
		errs = append(errs, errors.New("export: sensor_id is required"))
	}
	return errors.Join(append(errs, c.Validate(), c.TLS.Validate())...)
}
