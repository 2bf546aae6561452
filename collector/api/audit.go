package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tapir-sensor/tapir/internal/lograte"
)

// AuditEntry is one line of the audit log: one retrieval request, allowed
// or denied.
type AuditEntry struct {
	Time       time.Time `json:"time"`        // when the request arrived
	Subject    string    `json:"subject"`     // "" when unauthenticated
	AuthMethod string    `json:"auth_method"` // "token", "cert" or ""
	Remote     string    `json:"remote"`      // remote address
	Endpoint   string    `json:"endpoint"`    // "pcap", "flows", "sensors"
	// Flow and Query are what the request asked for, cut to
	// audit.max_param_bytes; a cut value ends in "…" and its full length
	// and the first 16 hex digits of its SHA-256 are in FlowLen/FlowSHA256
	// (QueryLen/QuerySHA256).
	Flow        string    `json:"flow,omitempty"`
	FlowLen     int       `json:"flow_len,omitempty"`
	FlowSHA256  string    `json:"flow_sha256,omitempty"`
	Query       string    `json:"query,omitempty"`
	QueryLen    int       `json:"query_len,omitempty"`
	QuerySHA256 string    `json:"query_sha256,omitempty"`
	From        time.Time `json:"from,omitzero"` // window searched
	To          time.Time `json:"to,omitzero"`
	Format      string    `json:"format,omitempty"`
	Status      int       `json:"status"` // HTTP status sent
	Error       string    `json:"error,omitempty"`
	Flows       int       `json:"flows"`   // flows (or records) served
	Packets     int64     `json:"packets"` // packets sent
	Bytes       int64     `json:"bytes"`   // response body bytes sent
	Truncated   bool      `json:"truncated,omitempty"`
	// PacketsExpired is set on a pcap answer that lacks packets retention
	// removed (also sent as the X-Tapir-Packets-Expired header).
	PacketsExpired *PacketsExpired `json:"packets_expired,omitempty"`
	// SuppressedDenials counts the denied requests from this entry's
	// source that were refused 429 (rate limited) and not audited one by
	// one since the previous audited denial from it.
	SuppressedDenials int64   `json:"suppressed_denials,omitempty"`
	DurationMS        float64 `json:"duration_ms"`
}

// maxAuditError bounds the error text of one entry.
const maxAuditError = 1024

// boundParam cuts a request parameter to max bytes. It returns the value
// to log and, when cut, the full length and a 16-hex-digit SHA-256
// prefix of the full value (enough to match a known value, not to store
// an attacker's megabyte).
func boundParam(v string, max int) (string, int, string) {
	if len(v) <= max {
		return v, 0, ""
	}
	sum := sha256.Sum256([]byte(v))
	return v[:max] + "…", len(v), hex.EncodeToString(sum[:8])
}

// setParams records the request's flow and query parameters, bounded.
func (e *AuditEntry) setParams(flow, query string, max int) {
	e.Flow, e.FlowLen, e.FlowSHA256 = boundParam(flow, max)
	e.Query, e.QueryLen, e.QuerySHA256 = boundParam(query, max)
}

// ErrAuditUnavailable: the audit log cannot take entries now (its file
// system is full, or the last write failed and reopening did not help).
// Retrievals are refused while it is so (unless audit.fail_open).
var ErrAuditUnavailable = errors.New("api: audit log unavailable")

// auditLog appends entries to a JSON-lines file, rotated by size. It is
// safe for concurrent use; entries are written whole, one per line, in
// the order Write is called. A failed write is counted, logged (without
// the request's parameters) and returned: it is never silently dropped.
type auditLog struct {
	mu      sync.Mutex
	path    string
	cfg     AuditConfig
	f       *os.File
	size    int64 // bytes in the current file
	closed  bool
	broken  error // the last write's error, until a reopen succeeds
	sync    bool
	log     *slog.Logger
	failLog *lograte.Limiter
	metrics *metrics
	buf     []byte
}

func openAudit(path string, doSync bool, cfg AuditConfig, log *slog.Logger, m *metrics) (*auditLog, error) {
	a := &auditLog{path: path, cfg: cfg, sync: doSync, log: log, metrics: m, failLog: lograte.New(10 * time.Second)}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if err := a.open(); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return a, nil
}

// open (re)opens the current file for appending, private to the owner.
func (a *auditLog) open() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return err
	}
	if a.f != nil {
		a.f.Close()
	}
	a.f, a.size = f, st.Size()
	return nil
}

// Ready reports whether an entry can be written now: the log is open,
// its last write did not fail (else it is reopened once), and its file
// system has room for MinFreeBytes. Retrievals call it before sending
// anything, so that they fail closed.
func (a *auditLog) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, os.ErrClosed)
	}
	if a.broken != nil {
		if err := a.recover(); err != nil {
			return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(a.path), &st); err != nil {
		return fmt.Errorf("%w: statfs: %w", ErrAuditUnavailable, err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < a.cfg.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free on its file system, need %d", ErrAuditUnavailable, free, a.cfg.MinFreeBytes)
	}
	return nil
}

// recover reopens the file after a failed write and proves it writable
// with a synced entry recording the failure (endpoint "audit"); only
// then are retrievals served again.
func (a *auditLog) recover() error {
	if err := a.open(); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	e := AuditEntry{Time: time.Now().UTC(), Endpoint: "audit", Error: "audit log reopened after a failed write: " + a.broken.Error()}
	line, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	n, err := a.f.Write(append(line, '\n'))
	a.size += int64(n)
	if err == nil {
		err = a.f.Sync()
	}
	if err != nil {
		a.broken = err
		return fmt.Errorf("write after reopen: %w", err)
	}
	a.broken = nil
	a.metrics.auditEntries.Inc()
	return nil
}

// Write appends one entry and flushes it to the kernel (and to disk when
// sync is on), rotating the file first when it would pass MaxBytes.
func (a *auditLog) Write(e *AuditEntry) error {
	if len(e.Error) > maxAuditError {
		e.Error = e.Error[:maxAuditError] + "…"
	}
	line, err := json.Marshal(e)
	if err != nil {
		return a.fail(e, fmt.Errorf("encode audit entry: %w", err))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return a.fail(e, fmt.Errorf("write audit entry: %w", os.ErrClosed))
	}
	if a.size > 0 && a.size+int64(len(line))+1 > a.cfg.MaxBytes {
		if err := a.rotate(); err != nil {
			a.broken = err
			return a.fail(e, fmt.Errorf("rotate audit log: %w", err))
		}
	}
	a.buf = append(append(a.buf[:0], line...), '\n')
	n, err := a.f.Write(a.buf)
	a.size += int64(n)
	if err == nil && a.sync {
		err = a.f.Sync()
	}
	if err != nil {
		a.broken = err
		return a.fail(e, fmt.Errorf("write audit entry: %w", err))
	}
	a.metrics.auditEntries.Inc()
	return nil
}

// rotate renames path.(i) to path.(i+1) for the Keep newest rotated
// files, path to path.1 (deleting what falls off the end), and starts a
// new file.
func (a *auditLog) rotate() error {
	if err := a.f.Sync(); err != nil {
		return err
	}
	_ = os.Remove(a.path + "." + strconv.Itoa(a.cfg.Keep))
	for i := a.cfg.Keep - 1; i >= 1; i-- {
		from := a.path + "." + strconv.Itoa(i)
		if err := os.Rename(from, a.path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(a.path, a.path+".1"); err != nil {
		return err
	}
	if err := a.open(); err != nil {
		return err
	}
	a.metrics.auditRotations.Inc()
	return nil
}

// fail counts a failed write and logs it, at most once per 10 s with the
// number of failures since. The request's flow and query are never
// logged: they are the caller's input, and the process log must not
// become the unbounded copy the audit file refused.
func (a *auditLog) fail(e *AuditEntry, err error) error {
	a.metrics.auditErrors.Inc()
	if n, ok := a.failLog.Allow(); ok {
		a.log.Error("audit log write failed; retrievals are refused until it is writable again", "err", err,
			"subject", e.Subject, "remote", e.Remote, "endpoint", e.Endpoint, "status", e.Status,
			"packets", e.Packets, "bytes", e.Bytes, "failures_not_logged", n)
	}
	return err
}

// Close closes the file; later writes fail (and are counted).
func (a *auditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return a.f.Close()
}
