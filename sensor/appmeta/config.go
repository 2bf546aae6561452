package appmeta

import (
	"errors"
	"fmt"
)

// Config bounds the work of metadata extraction.
type Config struct {
	// Enabled turns extraction on (default true).
	Enabled bool `yaml:"enabled"`
	// MaxPackets is how many payload packets of each direction of a flow
	// are inspected at most (default 8).
	MaxPackets int `yaml:"max_packets"`
	// MaxBytes is how many payload bytes of each TCP direction are
	// reassembled at most (the first flight: a ClientHello split over
	// segments, HTTP headers), default 16384.
	MaxBytes int `yaml:"max_bytes"`
	// MaxAnswers is how many DNS answer records are kept (default 16).
	MaxAnswers int `yaml:"max_answers"`
}

// DefaultConfig returns the defaults: on, 8 payload packets and 16 KiB per
// direction, 16 DNS answers.
func DefaultConfig() Config {
	return Config{Enabled: true, MaxPackets: 8, MaxBytes: 16 << 10, MaxAnswers: 16}
}

// ErrInvalidConfig wraps configuration errors.
var ErrInvalidConfig = errors.New("invalid metadata config")

// Validate checks the limits.
func (c *Config) Validate() error {
	if c.MaxPackets < 1 || c.MaxPackets > 255 {
		return fmt.Errorf("%w: max_packets %d not in [1, 255]", ErrInvalidConfig, c.MaxPackets)
	}
	if c.MaxBytes < 512 || c.MaxBytes > 1<<20 {
		return fmt.Errorf("%w: max_bytes %d not in [512, 1048576]", ErrInvalidConfig, c.MaxBytes)
	}
	if c.MaxAnswers < 0 || c.MaxAnswers > 256 {
		return fmt.Errorf("%w: max_answers %d not in [0, 256]", ErrInvalidConfig, c.MaxAnswers)
	}
	return nil
}
