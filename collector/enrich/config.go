package enrich

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/collector/enrich/assets"
	"github.com/tapir-sensor/tapir/collector/enrich/geoip"
	"github.com/tapir-sensor/tapir/collector/enrich/intel"
	"github.com/tapir-sensor/tapir/collector/enrich/pdns"
	"github.com/tapir-sensor/tapir/collector/enrich/rarity"
)

// Config is the collector's `enrich:` section: one sub-section per
// enricher, the order they run in, and where alerts go.
type Config struct {
	// Order lists the enrichers in the order they run. Assets must come
	// before geoip (internal addresses keep their site's location), pdns
	// before intel and rarity (they use the domain it finds).
	Order []string `yaml:"order"`
	// Assets, GeoIP, ASN, PDNS, Intel and Rarity configure each enricher;
	// each is off unless enabled.
	Assets assets.Config   `yaml:"assets"`
	GeoIP  geoip.Config    `yaml:"geoip"`
	ASN    geoip.ASNConfig `yaml:"asn"`
	PDNS   pdns.Config     `yaml:"pdns"`
	Intel  intel.Config    `yaml:"intel"`
	Rarity rarity.Config   `yaml:"rarity"`
	Alerts AlertsConfig    `yaml:"alerts"`
	// StateDir holds the pdns and rarity snapshots when their snapshot
	// paths are empty (the collector sets it to <store dir>/enrich).
	StateDir string `yaml:"state_dir"`
	// TimingSample measures the time spent in each enricher on one record
	// in this many (power of two); 0 never.
	TimingSample uint64 `yaml:"timing_sample"`
}

// AlertsConfig says where threat intel alerts go.
type AlertsConfig struct {
	// File is a JSON-lines file alerts are appended to (empty: none).
	File string `yaml:"file"`
	// Queue bounds the alerts waiting to be written; more are dropped
	// (counted in tapir_enrich_alerts_dropped_total).
	Queue int `yaml:"queue"`
	// FlushInterval bounds how long an alert waits before being written.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// DefaultConfig returns the defaults: every enricher off.
func DefaultConfig() Config {
	return Config{
		Order:  []string{"assets", "geoip", "asn", "pdns", "intel", "rarity"},
		Assets: assets.DefaultConfig(), GeoIP: geoip.DefaultConfig(), ASN: geoip.DefaultASNConfig(),
		PDNS: pdns.DefaultConfig(), Intel: intel.DefaultConfig(), Rarity: rarity.DefaultConfig(),
		Alerts:       AlertsConfig{Queue: 4096, FlushInterval: time.Second},
		TimingSample: 64,
	}
}

// ErrInvalid wraps configuration errors.
var ErrInvalid = errors.New("invalid enrich config")

var known = map[string]bool{"assets": true, "geoip": true, "asn": true, "pdns": true, "intel": true, "rarity": true}

// Validate checks every section.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for _, n := range c.Order {
		if !known[n] {
			return fmt.Errorf("%w: order: unknown enricher %q", ErrInvalid, n)
		}
		if seen[n] {
			return fmt.Errorf("%w: order: %q twice", ErrInvalid, n)
		}
		seen[n] = true
	}
	if c.TimingSample != 0 && c.TimingSample&(c.TimingSample-1) != 0 {
		return fmt.Errorf("%w: timing_sample must be a power of two", ErrInvalid)
	}
	if c.Alerts.Queue < 1 || c.Alerts.FlushInterval <= 0 {
		return fmt.Errorf("%w: alerts queue and flush_interval must be positive", ErrInvalid)
	}
	for _, v := range []interface{ Validate() error }{&c.Assets, &c.GeoIP, &c.ASN, &c.PDNS, &c.Intel, &c.Rarity} {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return nil
}

// IntelFeed is one threat intel feed (intel.FeedConfig).
type IntelFeed = intel.FeedConfig
