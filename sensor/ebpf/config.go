package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Config is the `ebpf:` section of the sensor configuration.
type Config struct {
	// Enable loads the eBPF data path on live interfaces. When it cannot
	// load (no CAP_BPF, kernel older than 6.6, a capture filter set) the
	// sensor logs one line and runs the same budget in userspace.
	Enable bool `yaml:"enable"`
	// BudgetBytes is the capture budget per flow direction: bytes stored
	// before the cut-off drops the rest in the kernel. 0 takes the flow
	// table's budget (flows.budget_bytes, --budget); the sensor sets both
	// to the same value so that the fallback behaves the same.
	BudgetBytes int64 `yaml:"budget_bytes"`
	// MaxFlows sizes the kernel flow map (entries). Past it new flows are
	// counted as map-full and captured whole (fail open).
	MaxFlows int `yaml:"max_flows"`
	// Keepalive makes the cut-off pass one packet per flow direction this
	// often, so the userspace flow table does not end a cut-off flow as
	// idle while it still runs (the flow table counts but does not store
	// that packet). Keep it well below flows.idle_timeout. 0 = default
	// (15 s); negative disables it.
	Keepalive time.Duration `yaml:"keepalive"`
	// DrainInterval is how often userspace reads the kernel's counters
	// and deletes idle entries in batches.
	DrainInterval time.Duration `yaml:"drain_interval"`
	// IdleTimeout deletes kernel entries that saw no packet for this
	// long (entries of flows the userspace table ended are deleted when
	// their final record goes out). Keep it above flows.idle_timeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Pins are flows captured whole whatever the budget.
	Pins PinConfig `yaml:"pins"`
}

// PinConfig lists pinned flows. A flow is pinned when either endpoint
// matches an address or network, either port matches, or its Community
// ID (with the sensor's seed) is listed.
type PinConfig struct {
	// Nets are addresses or CIDR networks, IPv4 or IPv6.
	Nets []string `yaml:"nets"`
	// Ports are TCP/UDP/SCTP ports.
	Ports []uint16 `yaml:"ports"`
	// CommunityIDs are Community ID v1 strings ("1:...").
	CommunityIDs []string `yaml:"community_ids"`
}

// Defaults.
const (
	DefaultMaxFlows      = 262144
	DefaultKeepalive     = 15 * time.Second
	DefaultDrainInterval = 5 * time.Second
	DefaultIdleTimeout   = 3 * time.Minute
)

// DefaultConfig returns the defaults (disabled).
func DefaultConfig() Config {
	return Config{
		MaxFlows:      DefaultMaxFlows,
		Keepalive:     DefaultKeepalive,
		DrainInterval: DefaultDrainInterval,
		IdleTimeout:   DefaultIdleTimeout,
	}
}

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("invalid ebpf config")

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.BudgetBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: budget_bytes %d < 0", ErrInvalidConfig, c.BudgetBytes))
	}
	if c.MaxFlows < 1024 || c.MaxFlows > 1<<24 {
		errs = append(errs, fmt.Errorf("%w: max_flows %d not in [1024, %d]", ErrInvalidConfig, c.MaxFlows, 1<<24))
	}
	if c.DrainInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: drain_interval %v below 100ms", ErrInvalidConfig, c.DrainInterval))
	}
	if c.IdleTimeout < c.DrainInterval {
		errs = append(errs, fmt.Errorf("%w: idle_timeout %v below drain_interval", ErrInvalidConfig, c.IdleTimeout))
	}
	if _, err := NewPins(c.Pins, 0); err != nil {
		errs = append(errs, fmt.Errorf("%w: pins: %v", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// keepalive returns the keepalive interval in ns (0 = off).
func (c Config) keepalive() uint64 {
	switch {
	case c.Keepalive < 0:
		return 0
	case c.Keepalive == 0:
		return uint64(DefaultKeepalive)
	}
	return uint64(c.Keepalive)
}

// Pins matches flows against a PinConfig. It is immutable and safe for
// concurrent use.
type Pins struct {
	nets  []netip.Prefix
	ports map[uint16]struct{}
	cids  map[string]struct{}
	seed  uint16
}

// NewPins parses c; seed is the sensor's Community ID seed.
func NewPins(c PinConfig, seed uint16) (*Pins, error) {
	p := &Pins{ports: map[uint16]struct{}{}, cids: map[string]struct{}{}, seed: seed}
	for _, s := range c.Nets {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("net %q: %w", s, err)
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		p.nets = append(p.nets, pf.Masked())
	}
	for _, port := range c.Ports {
		p.ports[port] = struct{}{}
	}
	for _, id := range c.CommunityIDs {
		if len(id) < 3 || id[:2] != "1:" {
			return nil, fmt.Errorf("community id %q: want 1:<base64>", id)
		}
		p.cids[id] = struct{}{}
	}
	return p, nil
}

// Empty reports whether nothing is pinned.
func (p *Pins) Empty() bool {
	return p == nil || len(p.nets) == 0 && len(p.ports) == 0 && len(p.cids) == 0
}

// HasCommunityIDs reports whether Community ID pins are set (they need
// new-flow events from the kernel).
func (p *Pins) HasCommunityIDs() bool { return p != nil && len(p.cids) > 0 }

// Match reports whether the flow with canonical key k is pinned. It is
// the flow table's BudgetExempt in the userspace path.
func (p *Pins) Match(k *flow.Key) bool {
	if p.Empty() || k.Family == flow.FamilyLink {
		return false
	}
	if p.MatchEndpoints(k) {
		return true
	}
	if len(p.cids) > 0 {
		var buf [64]byte
		t := k.Forward()
		_, ok := p.cids[string(flow.AppendCommunityID(buf[:0], p.seed, &t))]
		return ok
	}
	return false
}

// MatchEndpoints is Match without Community IDs: addresses, networks and
// ports, which the kernel evaluates itself.
func (p *Pins) MatchEndpoints(k *flow.Key) bool {
	if p == nil {
		return false
	}
	if flow.HasPorts(k.Proto) {
		if _, ok := p.ports[k.PortA]; ok {
			return true
		}
		if _, ok := p.ports[k.PortB]; ok {
			return true
		}
	}
	if len(p.nets) > 0 {
		a, b := k.A.Netip(k.Family), k.B.Netip(k.Family)
		for _, n := range p.nets {
			if n.Contains(a) || n.Contains(b) {
				return true
			}
		}
	}
	return false
}
