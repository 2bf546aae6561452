package query

import (
	"fmt"
	"time"
)

// Config bounds what one query may cost. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	// MaxLength is the longest query accepted, in bytes.
	MaxLength int `yaml:"max_length"`
	// MaxNodes is the largest number of AST nodes (terms and operators).
	MaxNodes int `yaml:"max_nodes"`
	// MaxDepth bounds nesting (parentheses and "not" chains).
	MaxDepth int `yaml:"max_depth"`
	// DefaultWindow is the time window searched when the query does not
	// bound it: with neither "after" nor "before", the last DefaultWindow
	// before now; with only one bound, DefaultWindow from that bound.
	DefaultWindow time.Duration `yaml:"default_window"`
	// MaxWindow rejects queries whose resolved window is longer (0 = no
	// limit).
	MaxWindow time.Duration `yaml:"max_window"`
}

// DefaultConfig returns the default limits: 4 KiB, 256 nodes, depth 32,
// a default window of one hour and a maximum window of 7 days.
func DefaultConfig() Config {
	return Config{
		MaxLength:     4096,
		MaxNodes:      256,
		MaxDepth:      32,
		DefaultWindow: time.Hour,
		MaxWindow:     7 * 24 * time.Hour,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.MaxLength <= 0 {
		return fmt.Errorf("query config: max_length must be positive, got %d", c.MaxLength)
	}
	if c.MaxNodes <= 0 {
		return fmt.Errorf("query config: max_nodes must be positive, got %d", c.MaxNodes)
	}
	if c.MaxDepth <= 0 {
		return fmt.Errorf("query config: max_depth must be positive, got %d", c.MaxDepth)
	}
	if c.DefaultWindow <= 0 {
		return fmt.Errorf("query config: default_window must be positive, got %v", c.DefaultWindow)
	}
	if c.MaxWindow < 0 {
		return fmt.Errorf("query config: max_window must not be negative, got %v", c.MaxWindow)
	}
	if c.MaxWindow > 0 && c.DefaultWindow > c.MaxWindow {
		return fmt.Errorf("query config: default_window %v exceeds max_window %v", c.DefaultWindow, c.MaxWindow)
	}
	return nil
}
