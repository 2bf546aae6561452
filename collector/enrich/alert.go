package enrich

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/tapir-sensor/tapir/flow"
)

// Alert is a flow that matched threat intelligence. Its JSON form is the
// enriched flow's ECS document with event.kind "alert", rule.name, and
// threat.* naming the indicators.
type Alert struct {
	Rule   string // "threat-intel"
	Record flow.Record
}

// ECS renders the alert.
func (a *Alert) ECS() *flow.ECS {
	e := a.Record.ToECS()
	e.Event.Kind = "alert"
	e.Event.Category = []string{"network", "threat"}
	e.Event.Type = []string{"indicator"}
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra["rule"] = map[string]string{"name": a.Rule}
	if a.Record.Enrichment != nil {
		if t := flow.ThreatECS(a.Record.Enrichment.Threats); t != nil {
			e.Extra["threat"] = t
		}
	}
	return e
}

// MarshalJSON renders the alert as ECS JSON.
func (a *Alert) MarshalJSON() ([]byte, error) { return json.Marshal(a.ECS()) }

// AlertSink publishes alerts (a Kafka producer, a file). It is called from
// one goroutine at a time.
type AlertSink func(ctx context.Context, alerts []Alert) error

// AlertFile appends alerts to a JSON-lines file. Safe for concurrent use.
type AlertFile struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// OpenAlertFile opens (creating or appending) path.
func OpenAlertFile(path string) (*AlertFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open alerts file: %w", err)
	}
	return &AlertFile{f: f, w: bufio.NewWriter(f)}, nil
}

// Write appends the alerts, one JSON document per line, and flushes.
func (a *AlertFile) Write(_ context.Context, alerts []Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range alerts {
		b, err := json.Marshal(&alerts[i])
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		// A bufio.Writer keeps its first error and returns it from Flush.
		_, _ = a.w.Write(b)
		_ = a.w.WriteByte('\n')
	}
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("write alerts: %w", err)
	}
	return nil
}

// Close flushes and closes the file.
func (a *AlertFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.w.Flush()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	return err
}
