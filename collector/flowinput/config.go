package flowinput

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config of the flow input (the collector's flow_input section).
// The input is off unless Enabled; each listener with an empty address
// is off.
type Config struct {
	// Enabled turns the UDP listeners on.
	Enabled bool `yaml:"enabled"`
	// NetFlow is the UDP address for NetFlow v5 and v9 (IPFIX is accepted
	// there too: the version field decides). Default ":2055".
	NetFlow string `yaml:"netflow"`
	// IPFIX is the UDP address for IPFIX (RFC 7011; NetFlow is accepted
	// there too). Default ":4739".
	IPFIX string `yaml:"ipfix"`
	// SFlow is the UDP address for sFlow v5. Default ":6343".
	SFlow string `yaml:"sflow"`
	// TemplatesFile keeps NetFlow v9 and IPFIX templates across restarts.
	// Empty: the collector puts it in its store directory
	// (flow-templates.json). "-" disables persistence.
	TemplatesFile string `yaml:"templates_file"`
	// CommunitySeed is the Community ID seed (as the sensors' community_seed).
	CommunitySeed uint16 `yaml:"community_seed"`
	// FlushInterval delivers pending records at least this often (200ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxBatch delivers an exporter's records once this many are pending (2000).
	MaxBatch int `yaml:"max_batch"`
	// QueueBatches bounds the batches waiting for delivery (64); when the
	// store or Kafka is slower than the exporters, further batches are
	// dropped and counted.
	QueueBatches int `yaml:"queue_batches"`
	// MaxExporters bounds the exporters tracked (templates, counters)
	// (1024); datagrams from further addresses are dropped and counted.
	MaxExporters int `yaml:"max_exporters"`
	// MaxTemplates bounds the templates kept per exporter (4096).
	MaxTemplates int `yaml:"max_templates"`
	// ReadBuffer is the UDP socket receive buffer in bytes (4 MiB).
	ReadBuffer int `yaml:"read_buffer"`
}

// DefaultConfig returns the defaults: off, standard ports.
func DefaultConfig() Config {
	return Config{
		NetFlow:       ":2055",
		IPFIX:         ":4739",
		SFlow:         ":6343",
		FlushInterval: 200 * time.Millisecond,
		MaxBatch:      2000,
		QueueBatches:  64,
		MaxExporters:  1024,
		MaxTemplates:  4096,
		ReadBuffer:    4 << 20,
	}
}

// ErrInvalidConfig wraps configuration errors.
var ErrInvalidConfig = errors.New("invalid flow_input config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	for _, l := range c.listeners() {
		name, a := l.name, l.addr
		if a == "" {
			continue
		}
		if _, err := net.ResolveUDPAddr("udp", a); err != nil {
			return fmt.Errorf("%w: %s address %q: %v", ErrInvalidConfig, name, a, err)
		}
	}
	if err := c.distinctListeners(); err != nil {
		return err
	}
	if c.Enabled && c.NetFlow == "" && c.IPFIX == "" && c.SFlow == "" {
		return fmt.Errorf("%w: enabled without any listener address", ErrInvalidConfig)
	}
	switch {
	case c.FlushInterval <= 0:
		return fmt.Errorf("%w: flush_interval must be positive", ErrInvalidConfig)
	case c.MaxBatch <= 0:
		return fmt.Errorf("%w: max_batch must be positive", ErrInvalidConfig)
	case c.QueueBatches <= 0:
		return fmt.Errorf("%w: queue_batches must be positive", ErrInvalidConfig)
	case c.MaxExporters <= 0:
		return fmt.Errorf("%w: max_exporters must be positive", ErrInvalidConfig)
	case c.MaxTemplates <= 0:
		return fmt.Errorf("%w: max_templates must be positive", ErrInvalidConfig)
	case c.ReadBuffer < 0:
		return fmt.Errorf("%w: read_buffer must not be negative", ErrInvalidConfig)
	}
	return nil
}

// listeners returns the configured listeners in the order netflow, ipfix,
// sflow, with empty addresses (listener off).
func (c *Config) listeners() []listener {
	return []listener{{"netflow", c.NetFlow, ProtoNetFlow}, {"ipfix", c.IPFIX, ProtoNetFlow}, {"sflow", c.SFlow, ProtoSFlow}}
}

// distinctListeners rejects two listeners on one UDP address (one socket
// cannot serve both: the second would never open). Port 0 (any free
// port) never conflicts; a wildcard address conflicts with every address
// on its port.
func (c *Config) distinctListeners() error {
	seen := map[int][]listener{}
	for _, l := range c.listeners() {
		if l.addr == "" {
			continue
		}
		ua, err := net.ResolveUDPAddr("udp", l.addr)
		if err != nil || ua.Port == 0 {
			continue // reported by Validate, or no conflict
		}
		for _, o := range seen[ua.Port] {
			oa, _ := net.ResolveUDPAddr("udp", o.addr)
			if ua.IP == nil || oa.IP == nil || ua.IP.IsUnspecified() || oa.IP.IsUnspecified() || ua.IP.Equal(oa.IP) {
				return fmt.Errorf("%w: %s and %s listen on the same address (%q, %q): give each its own port, or leave one empty (the netflow listener accepts IPFIX too)",
					ErrInvalidConfig, o.name, l.name, o.addr, l.addr)
			}
		}
		seen[ua.Port] = append(seen[ua.Port], l)
	}
	return nil
}
