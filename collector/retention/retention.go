// Package retention runs the collector's packet retention: every
// Interval it asks the store to remove packet blocks older than MaxAge and
// the oldest blocks beyond MaxBytes. Flow records and the flow index stay,
// so an expired flow answers "packets expired".
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/storage"
)

// Config configures retention.
type Config struct {
	// MaxAge removes packets older than this (0 keeps them by age).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes caps the stored packet data (0: no cap).
	MaxBytes int64 `yaml:"max_bytes"`
	// Interval between runs.
	Interval time.Duration `yaml:"interval"`
}

// DefaultConfig keeps 7 days, no size cap, checked every minute.
func DefaultConfig() Config {
	return Config{MaxAge: 7 * 24 * time.Hour, Interval: time.Minute}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.MaxAge < 0 || c.MaxBytes < 0 {
		return errors.New("retention: max_age and max_bytes must not be negative")
	}
	if c.Interval < time.Second {
		return fmt.Errorf("retention: interval %v below 1s", c.Interval)
	}
	return nil
}

// Runner is the retention component: New is inert, Start launches the
// loop, Stop ends it and waits. Safe for concurrent use.
type Runner struct {
	cfg    Config
	store  storage.Retention
	log    *slog.Logger
	blocks prometheus.Counter
	bytes  prometheus.Counter
	errs   prometheus.Counter
	now    func() time.Time

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds a runner.
func New(cfg Config, store storage.Retention, logger *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{cfg: cfg, store: store, log: logger.With("component", "retention"), now: time.Now,
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_retention_blocks_expired_total", Help: "Packet blocks removed by retention."}),
		bytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_retention_bytes_expired_total", Help: "Bytes of packet blocks removed by retention."}),
		errs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_retention_errors_total", Help: "Retention runs that failed."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.blocks, r.bytes, r.errs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register retention metrics: %w", err)
			}
		}
	}
	return r, nil
}

// RunOnce applies retention now.
func (r *Runner) RunOnce(ctx context.Context) (storage.ExpireStats, error) {
	cutoff := time.Time{}
	if r.cfg.MaxAge > 0 {
		cutoff = r.now().Add(-r.cfg.MaxAge)
	}
	st, err := r.store.Expire(ctx, cutoff, r.cfg.MaxBytes)
	r.blocks.Add(float64(st.Blocks))
	r.bytes.Add(float64(st.Bytes))
	if err != nil {
		r.errs.Inc()
		return st, fmt.Errorf("expire: %w", err)
	}
	if st.Blocks > 0 {
		r.log.Info("packets expired", "blocks", st.Blocks, "bytes", st.Bytes, "cutoff", cutoff, "max_bytes", r.cfg.MaxBytes)
	}
	return st, nil
}

// Start launches the periodic loop.
func (r *Runner) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return errors.New("retention: already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		for {
			if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("retention run failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the loop and waits; idempotent.
func (r *Runner) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
