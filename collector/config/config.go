// Package config is the tapir-collector daemon's configuration file: one
// YAML document with a section per component. Unknown keys are errors.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/collector/flowinput"
	"github.com/tapir-sensor/tapir/collector/ingest"
	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/collector/retention"
	"github.com/tapir-sensor/tapir/collector/searchindex"
	"github.com/tapir-sensor/tapir/storage/hbase"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// Config is the whole collector configuration.
type Config struct {
	// Store is the packet and flow store.
	Store Store `yaml:"store"`
	// Retention removes old packets.
	Retention retention.Config `yaml:"retention"`
	// Ingest is the sensors' gRPC endpoint.
	Ingest ingest.Config `yaml:"ingest"`
	// API is the investigators' HTTP endpoint.
	API api.Config `yaml:"api"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Enrich is the enrichment chain (GeoIP, ASN, assets, passive DNS,
	// threat intel, rarity) and where alerts go.
	Enrich enrich.Config `yaml:"enrich"`
	// Kafka publishes flow records, sensor health and alerts (disabled
	// while kafka.brokers is empty).
	Kafka publish.Config `yaml:"kafka"`
	// OpenSearch indexes the flows topic into OpenSearch (off while
	// opensearch.urls is empty; needs kafka.brokers).
	OpenSearch searchindex.Config `yaml:"opensearch"`
	// FlowInput receives NetFlow, IPFIX and sFlow from routers and
	// switches (off unless enabled).
	FlowInput flowinput.Config `yaml:"flow_input"`
}

// Store selects and configures the backend.
type Store struct {
	// Backend is "pebble" (embedded, the default) or "hbase".
	Backend string `yaml:"backend"`
	// Dir is the embedded store's directory.
	Dir string `yaml:"dir"`
	// Pebble tunes the embedded store.
	Pebble pebble.Config `yaml:"pebble"`
	// HBase configures the HBase backend (store.backend: hbase).
	HBase hbase.Config `yaml:"hbase"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address of /metrics; empty disables it.
	Listen string `yaml:"listen"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Store:      Store{Backend: "pebble", Dir: "/var/lib/tapir/store", Pebble: pebble.DefaultConfig(), HBase: hbase.DefaultConfig()},
		Retention:  retention.DefaultConfig(),
		Ingest:     ingest.DefaultConfig(),
		API:        api.DefaultConfig(),
		Metrics:    Metrics{Listen: "127.0.0.1:9311"},
		Kafka:      publish.DefaultConfig(),
		OpenSearch: searchindex.DefaultConfig(),
		Enrich:     enrich.DefaultConfig(),
		FlowInput:  flowinput.DefaultConfig(),
	}
}

// ErrInvalid wraps configuration errors found here.
var ErrInvalid = errors.New("invalid collector config")

// Load reads a YAML file over the defaults; unknown keys are errors.
func Load(path string) (Config, error) {
	cfg := DefaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return cfg, nil
}

// Validate checks every section.
func (c *Config) Validate() error {
	switch c.Store.Backend {
	case "pebble":
		if err := c.Store.Pebble.Validate(); err != nil {
			return fmt.Errorf("%w: store.pebble: %v", ErrInvalid, err)
		}
	case "hbase":
		if err := c.Store.HBase.Validate(); err != nil {
			return fmt.Errorf("%w: store.hbase: %v", ErrInvalid, err)
		}
	default:
		return fmt.Errorf("%w: store.backend %q (supported: pebble, hbase)", ErrInvalid, c.Store.Backend)
	}
	if c.Store.Dir == "" {
		return fmt.Errorf("%w: store.dir is empty", ErrInvalid)
	}
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: kafka: %v", ErrInvalid, err)
	}
	if err := c.OpenSearch.Validate(); err != nil {
		return fmt.Errorf("%w: opensearch: %v", ErrInvalid, err)
	}
	if c.OpenSearch.Enabled() && !c.Kafka.Enabled() {
		return fmt.Errorf("%w: opensearch: the indexer reads the kafka flows topic: set kafka.brokers", ErrInvalid)
	}
	if c.API.Search.Backend == api.BackendOpenSearch && !c.OpenSearch.Enabled() {
		return fmt.Errorf("%w: api.search.backend opensearch: set opensearch.urls", ErrInvalid)
	}
	if err := c.Retention.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := c.Ingest.ValidateAll(); err != nil {
		return fmt.Errorf("%w: ingest: %v", ErrInvalid, err)
	}
	if err := c.API.Validate(); err != nil {
		return fmt.Errorf("%w: api: %v", ErrInvalid, err)
	}
	if err := c.Enrich.Validate(); err != nil {
		return fmt.Errorf("%w: enrich: %v", ErrInvalid, err)
	}
	if err := c.FlowInput.Validate(); err != nil {
		return fmt.Errorf("%w: flow_input: %v", ErrInvalid, err)
	}
	return nil
}
