package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log: one retrieval request, allowed
// or denied.
type AuditEntry struct {
	Time       time.Time `json:"time"`        // when the request arrived
	Subject    string    `json:"subject"`     // "" when unauthenticated
	AuthMethod string    `json:"auth_method"` // "token", "cert" or ""
	Remote     string    `json:"remote"`      // remote address
	Endpoint   string    `json:"endpoint"`    // "pcap", "flows", "sensors"
	Flow       string    `json:"flow,omitempty"`
	Query      string    `json:"query,omitempty"`
	From       time.Time `json:"from,omitzero"` // window searched
	To         time.Time `json:"to,omitzero"`
	Format     string    `json:"format,omitempty"`
	Status     int       `json:"status"` // HTTP status sent
	Error      string    `json:"error,omitempty"`
	Flows      int       `json:"flows"`   // flows (or records) served
	Packets    int64     `json:"packets"` // packets sent
	Bytes      int64     `json:"bytes"`   // response body bytes sent
	Truncated  bool      `json:"truncated,omitempty"`
	// PacketsExpired is set on a pcap answer that lacks packets retention
	// removed (also sent as the X-Tapir-Packets-Expired header).
	PacketsExpired *PacketsExpired `json:"packets_expired,omitempty"`
	DurationMS     float64         `json:"duration_ms"`
}

// auditLog appends entries to a JSON-lines file. It is safe for
// concurrent use; entries are written whole, one per line, in the order
// Write is called. A failed write is counted, logged and returned: it is
// never silently dropped.
type auditLog struct {
	mu      sync.Mutex
	f       *os.File
	sync    bool
	log     *slog.Logger
	metrics *metrics
	buf     []byte
}

func openAudit(path string, doSync bool, log *slog.Logger, m *metrics) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &auditLog{f: f, sync: doSync, log: log, metrics: m}, nil
}

// Write appends one entry and flushes it to the kernel (and to disk when
// sync is on).
func (a *auditLog) Write(e *AuditEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return a.fail(e, fmt.Errorf("encode audit entry: %w", err))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return a.fail(e, fmt.Errorf("write audit entry: %w", os.ErrClosed))
	}
	a.buf = append(append(a.buf[:0], line...), '\n')
	if _, err := a.f.Write(a.buf); err != nil {
		return a.fail(e, fmt.Errorf("write audit entry: %w", err))
	}
	if a.sync {
		if err := a.f.Sync(); err != nil {
			return a.fail(e, fmt.Errorf("sync audit log: %w", err))
		}
	}
	a.metrics.auditEntries.Inc()
	return nil
}

func (a *auditLog) fail(e *AuditEntry, err error) error {
	a.metrics.auditErrors.Inc()
	// The entry goes to the process log so that it is not lost.
	a.log.Error("audit log write failed", "err", err, "subject", e.Subject, "remote", e.Remote,
		"endpoint", e.Endpoint, "flow", e.Flow, "query", e.Query, "status", e.Status,
		"packets", e.Packets, "bytes", e.Bytes)
	return err
}

// Close closes the file; later writes fail (and are counted).
func (a *auditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
