package pebble

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/internal/lograte"
	"github.com/tapir-sensor/tapir/storage"
)

// integrityMetrics count what the store could not read or write.
type integrityMetrics struct {
	// corruption counts checksum and corruption errors by where they
	// were met: read (a lookup or scan), background (a compaction or
	// flush), open, wal (damage found in a WAL before replay).
	corruption *prometheus.CounterVec
	// background counts Pebble's background errors (flushes, compactions).
	background prometheus.Counter
	// failed is 1 once the store failed (disk full or I/O error in
	// Pebble's log, manifest or flushes); the collector then exits.
	failed prometheus.Gauge
}

func newIntegrityMetrics() *integrityMetrics {
	return &integrityMetrics{
		corruption: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_store_corruption_total",
			Help: "Corruption (checksum) errors met by the embedded store, by where: read, background, open, wal.",
		}, []string{"where"}),
		background: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_store_background_errors_total",
			Help: "Errors of Pebble's background work (flushes, compactions).",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapir_store_failed",
			Help: "1 when the embedded store failed (disk full or I/O error) and refuses every operation.",
		}),
	}
}

func (m *integrityMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.corruption, m.background, m.failed}
}

// failure is the store's failed state: set once, by the first fatal
// error, and announced on a channel.
type failure struct {
	once sync.Once
	ch   chan struct{}
}

// Failed returns a channel closed when the store fails for good: Pebble
// could not write its log, manifest or a flush (typically the disk is
// full). Every operation then returns an error wrapping ErrFailed; the
// collector exits so that its supervisor restarts it, and a restart
// replays the synced log (nothing acknowledged is lost).
func (s *Store) Failed() <-chan struct{} { return s.failure.ch }

// Err returns the error the store failed with, or nil.
func (s *Store) Err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// setFailed records the first fatal error and announces it.
func (s *Store) setFailed(err error) {
	if !s.failed.CompareAndSwap(nil, &err) {
		return
	}
	s.integrity.failed.Set(1)
	s.log.Error("store failed: every operation is refused until the collector restarts", "err", err.Error())
	s.failure.once.Do(func() { close(s.failure.ch) })
}

// isDiskFull reports whether err is the file system running out of space
// or quota.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// eventListener turns Pebble's background errors into metrics and error
// log lines (Pebble's own log goes to debug). A flush or compaction that
// runs out of disk fails the store: Pebble would otherwise retry the
// flush at once, forever (a CPU spin that never recovers), and stall
// writes once its memtables are full.
func (s *Store) eventListener() *pebble.EventListener {
	bgLog := lograte.New(10 * time.Second)
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			s.integrity.background.Inc()
			switch {
			case pebble.IsCorruptionError(err):
				s.integrity.corruption.WithLabelValues("background").Inc()
				if n, ok := bgLog.Allow(); ok {
					s.log.Error("store corruption met by a background compaction or flush", "err", err.Error(), "not_logged", n)
				}
			case isDiskFull(err):
				s.setFailed(fmt.Errorf("%w: %w: %w", ErrFailed, ErrDiskFull, err))
			default:
				if n, ok := bgLog.Allow(); ok {
					s.log.Error("store background error", "err", err.Error(), "not_logged", n)
				}
			}
		},
	}
}

// readErr classifies an error of the read path: a corruption error is
// counted, logged at error level (rate limited) and returned wrapping
// storage.ErrCorrupt with what was being read; others pass unchanged.
func (s *Store) readErr(err error, what string) error {
	if err == nil || !pebble.IsCorruptionError(err) {
		return err
	}
	s.integrity.corruption.WithLabelValues("read").Inc()
	if n, ok := s.corruptLog.Allow(); ok {
		s.log.Error("store corruption: data of a flow cannot be read", "what", what, "err", err.Error(), "not_logged", n)
	}
	return fmt.Errorf("%w: %s: %w", storage.ErrCorrupt, what, err)
}
