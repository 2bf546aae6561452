package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// Config of the ingest server. Every field has a default
// (DefaultConfig); zero values are invalid unless noted.
type Config struct {
	// Listen is the address Start listens on when given no listener.
	Listen string `yaml:"listen"`
	// TLS is the server side of the sensors' mutual TLS. Plaintext needs
	// an explicit insecure: true.
	TLS tlsconfig.Config `yaml:"tls"`
	// CollectorID names this collector in HelloAck (default: none).
	CollectorID string `yaml:"collector_id"`
	// MaxRecvMsgSize bounds one message (one batch) in bytes.
	MaxRecvMsgSize int `yaml:"max_recv_msg_size"`
	// MaxStreams bounds the sensor streams open at once on this collector;
	// more are refused with ResourceExhausted.
	MaxStreams int `yaml:"max_streams"`
	// MaxStreamsPerSensor bounds the streams open at once under one sensor
	// id (a reconnecting sensor's stale stream, or several hosts sharing
	// an id); more are refused with ResourceExhausted.
	MaxStreamsPerSensor int `yaml:"max_streams_per_sensor"`
	// MaxInflightBytes is the budget of batch bytes received and not yet
	// stored, across all streams. A stream over budget waits before
	// reading its next batch (HTTP/2 flow control holds its sensor back);
	// the waits are counted. One batch larger than the budget passes
	// alone.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// MaxStringBytes bounds every string of a flow record (interface,
	// Community ID, DNS names, URIs, user agents, ...) and of the stats
	// counters' names; MaxListItems bounds every list inside a record
	// (DNS answers, ALPN values) and the counters of one stats report.
	// A batch over them is refused with InvalidArgument.
	MaxStringBytes int `yaml:"max_string_bytes"`
	MaxListItems   int `yaml:"max_list_items"`
	// MaxConcurrentStreams bounds the streams on one HTTP/2 connection.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxFlowsPerBatch and MaxBlocksPerBatch bound one batch's contents.
	MaxFlowsPerBatch  int `yaml:"max_flows_per_batch"`
	MaxBlocksPerBatch int `yaml:"max_blocks_per_batch"`
	// HelloTimeout is how long a new stream may take to send its Hello.
	HelloTimeout time.Duration `yaml:"hello_timeout"`
	// HandshakeTimeout bounds a connection's TLS and HTTP/2 setup.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// WriteTimeout bounds one store write.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// KeepaliveTime and KeepaliveTimeout: the server pings an idle
	// connection after KeepaliveTime and drops it if no answer comes
	// within KeepaliveTimeout.
	KeepaliveTime    time.Duration `yaml:"keepalive_time"`
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// KeepaliveMinTime is the shortest client ping interval tolerated;
	// clients pinging more often are disconnected.
	KeepaliveMinTime time.Duration `yaml:"keepalive_min_time"`
	// StopTimeout bounds Stop's graceful drain.
	StopTimeout time.Duration `yaml:"stop_timeout"`
}

// DefaultConfig returns the defaults: port 4740, 16 MiB messages.
// TLS files must still be set (or insecure chosen) to validate.
func DefaultConfig() Config {
	return Config{
		Listen:               ":4740",
		MaxRecvMsgSize:       16 << 20,
		MaxStreams:           1024,
		MaxStreamsPerSensor:  4,
		MaxInflightBytes:     256 << 20,
		MaxStringBytes:       4096,
		MaxListItems:         256,
		MaxConcurrentStreams: 16,
		MaxFlowsPerBatch:     100_000,
		MaxBlocksPerBatch:    50_000,
		HelloTimeout:         10 * time.Second,
		HandshakeTimeout:     10 * time.Second,
		WriteTimeout:         30 * time.Second,
		KeepaliveTime:        30 * time.Second,
		KeepaliveTimeout:     10 * time.Second,
		KeepaliveMinTime:     5 * time.Second,
		StopTimeout:          10 * time.Second,
	}
}

// Validate checks the configuration, TLS excepted (see ValidateAll).
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("ingest: %s must be positive", name))
		}
	}
	pos("max_recv_msg_size", c.MaxRecvMsgSize > 0)
	pos("max_streams", c.MaxStreams > 0)
	pos("max_streams_per_sensor", c.MaxStreamsPerSensor > 0)
	pos("max_inflight_bytes", c.MaxInflightBytes > 0)
	pos("max_string_bytes", c.MaxStringBytes > 0)
	pos("max_list_items", c.MaxListItems > 0)
	pos("max_concurrent_streams", c.MaxConcurrentStreams > 0)
	pos("max_flows_per_batch", c.MaxFlowsPerBatch > 0)
	pos("max_blocks_per_batch", c.MaxBlocksPerBatch > 0)
	pos("hello_timeout", c.HelloTimeout > 0)
	pos("handshake_timeout", c.HandshakeTimeout > 0)
	pos("write_timeout", c.WriteTimeout > 0)
	pos("keepalive_time", c.KeepaliveTime > 0)
	pos("keepalive_timeout", c.KeepaliveTimeout > 0)
	pos("keepalive_min_time", c.KeepaliveMinTime > 0)
	pos("stop_timeout", c.StopTimeout > 0)
	return errors.Join(errs...)
}

// ValidateAll checks the configuration including its TLS section.
func (c Config) ValidateAll() error {
	return errors.Join(c.Validate(), c.TLS.Validate())
}
