// Package config is the tapir-sensor daemon's configuration file: one YAML
// document with a section per component. Unknown keys are errors, every
// field has a default, and Validate says precisely what is wrong.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/ebpf"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/export"
	"github.com/tapir-sensor/tapir/sensor/ipfix"
)

// Config is the whole sensor configuration.
type Config struct {
	// Engine holds sensor_id, community_seed, flows and blocks (inline).
	Engine engine.Config `yaml:",inline"`
	// Capture configures live capture.
	Capture Capture `yaml:"capture"`
	// Decode configures the packet decoder: tunnel decapsulation and
	// mirror interfaces.
	Decode Decode `yaml:"decode"`
	// Output configures where flows and blocks go.
	Output Output `yaml:"output"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// EBPF configures the eBPF data path (in-kernel flow counters and the
	// capture cut-off) for live capture; see sensor/ebpf.
	EBPF ebpf.Config `yaml:"ebpf"`
	// Deprecated lists the deprecated keys Load read, each with its
	// replacement ("flows.snap_len is deprecated: use flows.store_bytes");
	// the daemon logs a warning for each.
	Deprecated []string `yaml:"-"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (runtime/debug.SetMemoryLimit): the garbage collector runs more
	// often as the heap nears it instead of letting it grow to twice the
	// live data. It covers the Go heap, not the block ring, which is
	// mapped outside it and capped by blocks.max_buffered. 0 leaves the
	// runtime alone (GOGC only); the GOMEMLIMIT environment variable,
	// when set, wins over this key. Default DefaultMemoryLimit.
	MemoryLimit int64 `yaml:"memory_limit"`
}

// DefaultMemoryLimit is memory_limit's default, 640 MiB: with the default
// block ring cap (256 MiB) the sensor stays under 1 GB of resident memory
// while tracking a million open flows, and a sensor with fewer flows never
// reaches it, so its garbage collector runs as it would without a limit.
const DefaultMemoryLimit = 640 << 20

// minMemoryLimit is the smallest memory_limit accepted: below it the
// collector would run nearly continuously.
const minMemoryLimit = 64 << 20

// Capture configures live AF_PACKET capture: which interfaces, how many
// workers each, and the ring settings shared by every socket (see
// capture.LiveConfig for each field).
type Capture struct {
	// Interfaces to capture on. Each gets Workers sockets in one fanout
	// group, so both directions of a flow reach the same worker.
	Interfaces []string `yaml:"interfaces"`
	// Workers per interface (fanout group members). Default 1.
	Workers int `yaml:"workers"`
	// Ring settings: snap_len, block_size, num_blocks, frame_size,
	// block_timeout, poll_timeout, promiscuous, fanout_group, filter,
	// tcpdump. fanout_group 0 picks a group id per interface.
	capture.LiveConfig `yaml:",inline"`
}

// Output configures the sensor's outputs; any combination may be on.
type Output struct {
	// FlowsOut writes ECS JSON flow records to a file ("-" = stdout).
	FlowsOut string `yaml:"flows_out"`
	// BlocksOut writes packet blocks to segment files in a directory.
	BlocksOut string `yaml:"blocks_out"`
	// Collector streams flows and blocks to collectors over mTLS gRPC
	// (on when collector.collectors is not empty): addresses in failover
	// order, tls, batching, spool (spool.dir, spool.max_bytes), backoff.
	// sensor_id is taken from the top level.
	Collector export.Config `yaml:"collector"`
	// IPFIX exports flow records as IPFIX over UDP to a flow collector
	// (on when ipfix.collector is set): collector, template_refresh,
	// template_refresh_messages, observation_domain, mtu, export_updates,
	// enterprise_number (see sensor/ipfix).
	IPFIX ipfix.Config `yaml:"ipfix"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address of /metrics; empty disables it.
	Listen string `yaml:"listen"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Engine:  engine.DefaultConfig(),
		Capture: Capture{Workers: 1, LiveConfig: capture.DefaultLiveConfig("")},
		Decode:  DefaultDecode(),
		Output:  Output{Collector: defaultExport(), IPFIX: ipfix.DefaultConfig()},
		Metrics: Metrics{Listen: "127.0.0.1:9310"},
		EBPF:    ebpf.DefaultConfig(),

		MemoryLimit: DefaultMemoryLimit,
	}
}

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("invalid sensor config")

// Load reads a YAML file over the defaults. Unknown keys are errors; a
// deprecated key (see deprecatedKeys) is read as its replacement and
// listed in Config.Deprecated.
func Load(path string) (Config, error) {
	cfg := DefaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	raw, cfg.Deprecated, err = renameDeprecated(raw)
	if err != nil {
		return cfg, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return cfg, nil
}

// Validate checks the configuration for a run that reads files (live ==
// false) or interfaces (live == true).
func (c *Config) Validate(live bool) error {
	if err := c.Engine.Validate(); err != nil {
		return err
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < minMemoryLimit {
		return fmt.Errorf("%w: memory_limit %d below %d (64 MiB; 0 = no limit)", ErrInvalid, c.MemoryLimit, minMemoryLimit)
	}
	if err := c.Decode.Validate(); err != nil {
		return err
	}
	cp := c.Capture
	if live {
		if len(cp.Interfaces) == 0 {
			return fmt.Errorf("%w: capture.interfaces is empty (or give -r FILE)", ErrInvalid)
		}
		if cp.Workers < 1 || cp.Workers > 64 {
			return fmt.Errorf("%w: capture.workers %d not in [1, 64]", ErrInvalid, cp.Workers)
		}
		for _, iface := range cp.Interfaces {
			lc := cp.LiveConfig
			lc.Interface = iface
			if err := lc.Validate(); err != nil {
				return fmt.Errorf("%w: capture on %s: %v", ErrInvalid, iface, err)
			}
		}
	}
	if c.EBPF.Enable {
		if err := c.EBPF.Validate(); err != nil {
			return fmt.Errorf("%w: ebpf: %v", ErrInvalid, err)
		}
	}
	o := c.Output
	if o.FlowsOut == "" && o.BlocksOut == "" && len(o.Collector.Collectors) == 0 && o.IPFIX.Collector == "" {
		return fmt.Errorf("%w: no output: set output.flows_out, output.blocks_out, output.collector.collectors or output.ipfix.collector", ErrInvalid)
	}
	if o.IPFIX.Collector != "" {
		if err := o.IPFIX.Validate(); err != nil {
			return fmt.Errorf("%w: output.ipfix: %v", ErrInvalid, err)
		}
	}
	if len(o.Collector.Collectors) > 0 {
		ec := o.Collector
		ec.SensorID = c.Engine.SensorID
		if err := ec.ValidateAll(); err != nil {
			return fmt.Errorf("%w: output.collector: %v", ErrInvalid, err)
		}
	}
	return nil
}

// defaultExport is the collector stream's defaults with the spool in the
// usual state directory.
func defaultExport() export.Config {
	c := export.DefaultConfig()
	c.Spool.Dir = "/var/lib/tapir/spool"
	return c
}
