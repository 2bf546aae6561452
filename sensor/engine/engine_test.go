package engine_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// memSink keeps copies of everything it gets.
type memSink struct {
	mu      sync.Mutex
	records []flow.Record
	blocks  [][]byte
}

func (m *memSink) AddRecord(r *flow.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, *r)
	return nil
}

func (m *memSink) AddBlock(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks = append(m.blocks, append([]byte(nil), b...))
	return nil
}

// finals returns the final records.
func (m *memSink) finals() []flow.Record {
	var out []flow.Record
	for _, r := range m.records {
		if r.Reason.Final() {
			out = append(out, r)
		}
	}
	return out
}

// longTimeouts makes flows end only at FIN/RST or the end of the file, as
// tshark's conversations do.
func longTimeouts() engine.Config {
	cfg := engine.DefaultConfig()
	cfg.SensorID = "test-sensor"
	cfg.Flows.IdleTimeout = 24 * time.Hour
	cfg.Flows.ActiveTimeout = 48 * time.Hour
	cfg.Flows.UpdateInterval = -1
	return cfg
}

// runFile runs the engine over one capture file and returns what it emitted.
// A read error (a damaged file) is returned, after everything read before
// it was flushed.
func runFile(t *testing.T, path string, cfg engine.Config) (*memSink, engine.Stats, error) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer src.Close()
	sink := &memSink{}
	e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	runErr := e.Wait()
	if err := e.Stop(); err != runErr {
		t.Fatalf("Stop returned %v, Wait %v", err, runErr)
	}
	return sink, e.Stats(), runErr
}

func TestDefaultConfigValidates(t *testing.T) {
	cfg := engine.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.SensorID = ""
	if bad.Validate() == nil {
		t.Error("empty sensor id accepted")
	}
	bad = cfg
	bad.Blocks.Compression = "ultra"
	if bad.Validate() == nil {
		t.Error("unknown compression accepted")
	}
	bad = cfg
	bad.Blocks.MaxBuffered = 10
	if bad.Validate() == nil {
		t.Error("max_buffered below max_bytes accepted")
	}
}
