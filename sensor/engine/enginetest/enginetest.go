// Package enginetest runs the sensor engine over a capture file for tests
// that need real flow records (the wire schema's, the stored format's, the
// IPFIX exporter's) without a collector.
package enginetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// RecordSink keeps a copy of every record the engine emits (updates
// included) and drops blocks. It is safe for concurrent use.
type RecordSink struct {
	mu   sync.Mutex
	recs []flow.Record
}

// AddRecord implements the engine's sink.
func (s *RecordSink) AddRecord(r *flow.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, *r)
	return nil
}

// AddBlock implements the engine's sink; blocks are dropped.
func (s *RecordSink) AddBlock([]byte) error { return nil }

// Records returns what the sink holds.
func (s *RecordSink) Records() []flow.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs
}

// LongFlowConfig is the engine's default configuration with timeouts long
// enough that a capture's flows end only at its end, and timelines from
// flows of one second: records with the most parts filled in.
func LongFlowConfig() engine.Config {
	cfg := engine.DefaultConfig()
	cfg.Flows.IdleTimeout = 24 * time.Hour
	cfg.Flows.ActiveTimeout = 48 * time.Hour
	cfg.Timeline.MinDuration = time.Second
	return cfg
}

// Records runs an engine with cfg over the capture file at path (pcap or
// pcapng, uncompressed) until its end and returns every record it
// emitted.
func Records(path string, cfg engine.Config) ([]flow.Record, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sink := &RecordSink{}
	e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := e.Start(); err != nil {
		return nil, fmt.Errorf("engine start: %w", err)
	}
	werr := e.Wait()
	if err := e.Stop(); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return nil, werr
	}
	return sink.Records(), nil
}
