package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/sensor/appmeta"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
)

// Config configures the sensor's data path.
type Config struct {
	// SensorID names this sensor in flow IDs, records and blocks.
	SensorID string `yaml:"sensor_id"`
	// CommunitySeed is the Community ID v1 seed (default 0).
	CommunitySeed uint16 `yaml:"community_seed"`
	// Flows configures each worker's flow table.
	Flows flowtable.Config `yaml:"flows"`
	// Blocks configures packet blocks.
	Blocks BlockConfig `yaml:"blocks"`
	// Metadata configures application metadata extraction (DNS, TLS,
	// HTTP, SSH) on the first payload packets of each flow.
	Metadata appmeta.Config `yaml:"metadata"`
	// Timeline configures per-flow packet and byte timelines.
	Timeline TimelineConfig `yaml:"timeline"`
	// TickInterval is how often (wall clock) an idle worker advances its
	// timers and publishes its counters.
	TickInterval time.Duration `yaml:"tick_interval"`
	// Decoders are the decoder options per source: Decoders[name] for
	// the interface (or file base name) name, Decoders[""] for every
	// other; a nil map or no entry means decode's defaults. Set by the
	// sensor configuration's decode section and --mirror; not a key of
	// its own.
	Decoders map[string]*decode.Options `yaml:"-"`
}

// BlockConfig says when a flow's open packet block closes.
type BlockConfig struct {
	// MaxBytes closes a block when its uncompressed body reaches this size.
	MaxBytes int `yaml:"max_bytes"`
	// MaxAge closes a block this long (packet time) after its first
	// packet, so packets become retrievable soon after capture.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBuffered bounds the memory the sensor keeps for packets not yet
	// in a block, whatever the number of open flows: each worker's ring
	// of pages gets an equal share. Past its share a worker gives the
	// flows that have waited longest their blocks early (counted).
	MaxBuffered int64 `yaml:"max_buffered"`
	// Disabled builds no packet blocks at all (a sensor that only reports
	// flows). Set by the sensor when no output takes blocks.
	Disabled bool `yaml:"-"`
	// Compression is s2 (the default: S2, klauspost/compress/s2) or a
	// zstd level: zstd or fastest, default, better. Blocks are delta coded
	// first (block/delta.go), after which S2 stores about 5 % more than
	// zstd fastest while the whole sensor uses about a quarter less CPU
	// (see the README's benchmark table): zstd is for sites that trade
	// CPU for disk.
	Compression string `yaml:"compression"`
}

// TimelineConfig says which flows carry a timeline (packets and bytes
// per interval, compressed with go-tsz) and how fine it is.
type TimelineConfig struct {
	// Enabled turns timelines on (default true).
	Enabled bool `yaml:"enabled"`
	// Interval is the bucket width (default 1s, at least 1ms).
	Interval time.Duration `yaml:"interval"`
	// MinDuration: only records of flows that lasted at least this long
	// carry a timeline (default 10s).
	MinDuration time.Duration `yaml:"min_duration"`
	// MaxPoints caps the non-empty intervals kept per flow (default
	// 3600); later ones are counted in the timeline's Cut.
	MaxPoints int `yaml:"max_points"`
}

// DefaultConfig returns the defaults: 128 KiB blocks closed after 2 s,
// 256 MiB of packets waiting for their blocks in all, S2 compression.
func DefaultConfig() Config {
	return Config{
		SensorID:     "sensor",
		Flows:        flowtable.DefaultConfig(),
		TickInterval: 250 * time.Millisecond,
		Metadata:     appmeta.DefaultConfig(),
		Timeline:     TimelineConfig{Enabled: true, Interval: time.Second, MinDuration: 10 * time.Second, MaxPoints: 3600},
		Blocks: BlockConfig{
			MaxBytes:    128 << 10,
			MaxAge:      2 * time.Second,
			MaxBuffered: 256 << 20,
			Compression: "s2",
		},
	}
}

// ErrInvalidConfig wraps every configuration error of the engine.
var ErrInvalidConfig = errors.New("invalid sensor engine config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.SensorID == "" {
		return fmt.Errorf("%w: sensor_id is empty", ErrInvalidConfig)
	}
	if len(c.SensorID) > 255 {
		return fmt.Errorf("%w: sensor_id longer than 255 bytes", ErrInvalidConfig)
	}
	if err := c.Flows.Validate(); err != nil {
		return fmt.Errorf("flows: %w", err)
	}
	if c.TickInterval <= 0 {
		return fmt.Errorf("%w: tick_interval %v must be > 0", ErrInvalidConfig, c.TickInterval)
	}
	if c.Metadata.Enabled {
		if err := c.Metadata.Validate(); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	if tl := c.Timeline; tl.Enabled {
		if tl.Interval < time.Millisecond || tl.Interval > time.Hour {
			return fmt.Errorf("%w: timeline.interval %v not in [1ms, 1h]", ErrInvalidConfig, tl.Interval)
		}
		if tl.MinDuration < 0 {
			return fmt.Errorf("%w: timeline.min_duration %v is negative", ErrInvalidConfig, tl.MinDuration)
		}
		if tl.MaxPoints < 1 || tl.MaxPoints > 1<<20 {
			return fmt.Errorf("%w: timeline.max_points %d not in [1, 1048576]", ErrInvalidConfig, tl.MaxPoints)
		}
	}
	b := c.Blocks
	if b.MaxBytes < 1024 || b.MaxBytes > block.MaxRawBody/2 {
		return fmt.Errorf("%w: blocks.max_bytes %d not in [1024, %d]", ErrInvalidConfig, b.MaxBytes, block.MaxRawBody/2)
	}
	if b.MaxAge <= 0 {
		return fmt.Errorf("%w: blocks.max_age %v must be > 0", ErrInvalidConfig, b.MaxAge)
	}
	if b.MaxBuffered < int64(b.MaxBytes) {
		return fmt.Errorf("%w: blocks.max_buffered %d below blocks.max_bytes", ErrInvalidConfig, b.MaxBuffered)
	}
	if _, err := encoderConfig(b.Compression); err != nil {
		return err
	}
	return nil
}

// encoderConfig maps blocks.compression to the block encoder's settings:
// "" and "s2" are S2, the rest zstd levels ("zstd" is "fastest").
func encoderConfig(name string) (block.EncoderConfig, error) {
	switch name {
	case "", "s2":
		return block.EncoderConfig{Level: block.SpeedFastest, S2: true}, nil
	case "zstd", "fastest":
		return block.EncoderConfig{Level: block.SpeedFastest}, nil
	case "default":
		return block.EncoderConfig{Level: block.SpeedDefault}, nil
	case "better":
		return block.EncoderConfig{Level: block.SpeedBetter}, nil
	}
	return block.EncoderConfig{}, fmt.Errorf("%w: blocks.compression %q (want s2, zstd, fastest, default or better)", ErrInvalidConfig, name)
}
