package flowtable

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Default configuration values.
const (
	DefaultIdleTimeout     = 60 * time.Second
	DefaultActiveTimeout   = 30 * time.Minute
	DefaultUpdateInterval  = 60 * time.Second
	DefaultTCPCloseLinger  = 2 * time.Second
	DefaultMaxFlows        = 262144
	DefaultFragmentTimeout = 30 * time.Second
	DefaultMaxFragments    = 4096
)

// maxMaxFlows bounds MaxFlows: index slots hold a 24-bit entry number
// beside an 8-bit hash tag.
const maxMaxFlows = 1<<24 - 2

// Config configures one Table. The zero value of a field means its default
// (see DefaultConfig) unless said otherwise.
type Config struct {
	// IdleTimeout ends a flow that saw no packet for this long (packet
	// time). A flow that saw a FIN ends with reason fin instead, one that
	// saw an RST with reason rst.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ActiveTimeout ends a flow instance this long after its first packet
	// (reason active-timeout); later packets start a new instance with a
	// new flow ID.
	ActiveTimeout time.Duration `yaml:"active_timeout"`
	// UpdateInterval makes a still-open flow emit a ReasonActive update
	// record (same ID, Segment+1) every interval after its start, so long
	// flows are visible while they last. Negative disables updates (0
	// means the default).
	UpdateInterval time.Duration `yaml:"update_interval"`
	// TCPCloseLinger keeps a TCP flow this long (packet time) after it
	// saw a FIN in both directions or an RST, so trailing ACKs and
	// retransmitted FINs land in it; then the flow ends with reason fin or
	// rst. The default, 2 s, covers the final ACK of a close on paths of
	// up to about a second of RTT while keeping port reuse by a new SYN
	// (which ends the old instance at once anyway) rare inside the window.
	TCPCloseLinger time.Duration `yaml:"tcp_close_linger"`
	// MaxFlows bounds the number of open flows. A new flow arriving at
	// capacity evicts the least recently active flow (reason evicted).
	MaxFlows int `yaml:"max_flows"`
	// BudgetBytes is the per-direction capture budget: packets of a
	// direction are stored while fewer than BudgetBytes bytes of that
	// direction were stored (the packet that crosses the budget is stored
	// whole); later packets are only counted. 0 means unlimited.
	BudgetBytes int64 `yaml:"budget_bytes"`
	// BudgetExempt, when set, is asked about a flow whose direction has
	// spent its budget, before a packet is cut: true stores the flow
	// whole from then on (flows an analyst pinned). It runs on the
	// table's goroutine and must not block.
	BudgetExempt func(k *flow.Key) bool `yaml:"-"`
	// SnapLen is the most bytes stored of one packet (the store_bytes key,
	// --store-bytes; not the capture length, capture.snap_len); 0 stores
	// all the captured bytes.
	SnapLen int `yaml:"store_bytes"`
	// FragmentTimeout is how long the fragment tracker remembers the ports
	// of an IP datagram after its first fragment, and how long a non-first
	// fragment that arrived before its first fragment is held before it is
	// counted in a port-less flow.
	FragmentTimeout time.Duration `yaml:"fragment_timeout"`
	// MaxFragments bounds both the tracked datagrams and the held
	// non-first fragments (each up to MaxFragments).
	MaxFragments int `yaml:"max_fragments"`
	// SensorID is hashed into every flow ID and copied into records.
	SensorID string `yaml:"-"`
	// Interface is copied into records (capture interface or file name).
	Interface string `yaml:"-"`
	// CommunitySeed is the Community ID v1 seed.
	CommunitySeed uint16 `yaml:"community_seed"`
	// TunnelFlows accounts each tunnelled packet also in the flow of its
	// outermost tunnel's own connection (see Table.Packet): the sensor
	// sets it; off, only the inner flows are kept.
	TunnelFlows bool `yaml:"-"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:     DefaultIdleTimeout,
		ActiveTimeout:   DefaultActiveTimeout,
		UpdateInterval:  DefaultUpdateInterval,
		TCPCloseLinger:  DefaultTCPCloseLinger,
		MaxFlows:        DefaultMaxFlows,
		FragmentTimeout: DefaultFragmentTimeout,
		MaxFragments:    DefaultMaxFragments,
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ActiveTimeout == 0 {
		c.ActiveTimeout = d.ActiveTimeout
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = d.UpdateInterval
	}
	if c.TCPCloseLinger == 0 {
		c.TCPCloseLinger = d.TCPCloseLinger
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = d.MaxFlows
	}
	if c.FragmentTimeout == 0 {
		c.FragmentTimeout = d.FragmentTimeout
	}
	if c.MaxFragments == 0 {
		c.MaxFragments = d.MaxFragments
	}
	return c
}

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("invalid flow table config")

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.IdleTimeout < 0:
		return fmt.Errorf("%w: idle_timeout %v < 0", ErrInvalidConfig, c.IdleTimeout)
	case c.ActiveTimeout < 0:
		return fmt.Errorf("%w: active_timeout %v < 0", ErrInvalidConfig, c.ActiveTimeout)
	case c.TCPCloseLinger < 0:
		return fmt.Errorf("%w: tcp_close_linger %v < 0", ErrInvalidConfig, c.TCPCloseLinger)
	case c.MaxFlows < 1 || c.MaxFlows > maxMaxFlows:
		return fmt.Errorf("%w: max_flows %d not in [1, %d]", ErrInvalidConfig, c.MaxFlows, maxMaxFlows)
	case c.BudgetBytes < 0:
		return fmt.Errorf("%w: budget_bytes %d < 0", ErrInvalidConfig, c.BudgetBytes)
	case c.SnapLen < 0:
		return fmt.Errorf("%w: store_bytes %d < 0", ErrInvalidConfig, c.SnapLen)
	case c.FragmentTimeout < 0:
		return fmt.Errorf("%w: fragment_timeout %v < 0", ErrInvalidConfig, c.FragmentTimeout)
	case c.MaxFragments < 1:
		return fmt.Errorf("%w: max_fragments %d < 1", ErrInvalidConfig, c.MaxFragments)
	}
	return nil
}
