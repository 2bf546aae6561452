package api

import "fmt"

// InspectConfig bounds the flow inspection answers (packet list, one
// packet, Follow Stream).
type InspectConfig struct {
	// PacketsLimit is the number of packets one packet list answers when
	// the request gives no limit; past it more is true.
	PacketsLimit int `yaml:"packets_limit"`
	// PacketsMaxLimit is the largest limit a packet list request may
	// ask, and the largest packet number of a one-packet request.
	PacketsMaxLimit int `yaml:"packets_max_limit"`
	// StreamMaxBytes caps the captured bytes of the packets Follow
	// Stream reassembles; past it the answer is cut (X-Tapir-Complete:
	// false).
	StreamMaxBytes int64 `yaml:"stream_max_bytes"`
}

// DefaultInspectConfig returns 1000 packets per list (at most 10000)
// and 64 MiB of packets per Follow Stream.
func DefaultInspectConfig() InspectConfig {
	return InspectConfig{PacketsLimit: 1000, PacketsMaxLimit: 10000, StreamMaxBytes: 64 << 20}
}

// Validate checks the bounds.
func (c InspectConfig) Validate() error {
	if c.PacketsLimit <= 0 || c.PacketsMaxLimit < c.PacketsLimit {
		return fmt.Errorf("%w: inspect.packets_limit must be positive and at most inspect.packets_max_limit", ErrConfig)
	}
	if c.StreamMaxBytes <= 0 {
		return fmt.Errorf("%w: inspect.stream_max_bytes must be positive", ErrConfig)
	}
	return nil
}
