// Package enrich is the collector's enrichment chain: an ordered list of
// enrichers (assets, GeoIP, ASN, passive DNS, threat intelligence,
// rarity) that add context to every flow record before it is stored and
// published, each with its own configuration, counters (records, hits,
// errors) and measured cost. Flows that match threat intelligence are
// also published as alerts (Dependencies.Alerts, e.g. a Kafka topic,
// and/or a JSON-lines file).
package enrich

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/enrich/assets"
	"github.com/tapir-sensor/tapir/collector/enrich/geoip"
	"github.com/tapir-sensor/tapir/collector/enrich/intel"
	"github.com/tapir-sensor/tapir/collector/enrich/pdns"
	"github.com/tapir-sensor/tapir/collector/enrich/rarity"
	"github.com/tapir-sensor/tapir/flow"
)

// Enricher adds one kind of context. Enrich must be safe for concurrent
// use, must not keep r, and reports whether it found anything (a hit).
type Enricher interface {
	Name() string
	Enrich(r *flow.Record, x *flow.Enrichment) (hit bool, err error)
	Start() error
	Stop()
}

// Dependencies are what a Chain is wired to.
type Dependencies struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Alerts publishes alerts (e.g. to Kafka); nil publishes only to the
	// configured alerts file, if any.
	Alerts AlertSink
	// Resolver does PTR lookups for pdns (nil: the system's).
	Resolver pdns.Resolver
}

// Stage is one enricher with its counters.
type Stage struct {
	Enricher
	records, hits, errors, timed, nanos atomic.Uint64
}

// StageStats are a stage's counters.
type StageStats struct {
	Name                  string
	Records, Hits, Errors uint64
	// NsPerRecord is the mean time per record, measured on sampled records.
	NsPerRecord float64
}

// Chain runs the stages in order. Enrich is safe for concurrent use.
// New is inert beyond loading data files; Start starts file watchers,
// snapshot timers and the alert writer; Stop stops them (idempotent).
type Chain struct {
	cfg    Config
	log    *slog.Logger
	stages []*Stage
	sinks  []AlertSink
	file   *AlertFile
	seq    atomic.Uint64

	alerts                     chan Alert
	alertsOut, alertsDropped   atomic.Uint64
	alertErrors, enrichRecords atomic.Uint64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New builds the enabled enrichers in cfg.Order.
func New(cfg Config, deps Dependencies) (*Chain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Chain{cfg: cfg, log: deps.Logger, stop: make(chan struct{}), alerts: make(chan Alert, cfg.Alerts.Queue)}
	var es []Enricher
	fail := func(err error) (*Chain, error) {
		for _, e := range es {
			e.Stop()
		}
		return nil, err
	}
	for _, name := range cfg.Order {
		log := deps.Logger.With("enricher", name)
		var e Enricher
		var err error
		switch name {
		case "assets":
			if cfg.Assets.Enabled {
				e, err = assets.New(cfg.Assets, log)
			}
		case "geoip":
			if cfg.GeoIP.Enabled {
				e, err = geoip.NewCity(cfg.GeoIP, log)
			}
		case "asn":
			if cfg.ASN.Enabled {
				e, err = geoip.NewASN(cfg.ASN, log)
			}
		case "pdns":
			if cfg.PDNS.Enabled {
				pc := cfg.PDNS
				if pc.Snapshot == "" && cfg.StateDir != "" {
					pc.Snapshot = filepath.Join(cfg.StateDir, "pdns.gob.gz")
				}
				e, err = pdns.New(pc, log, deps.Resolver)
			}
		case "intel":
			if cfg.Intel.Enabled {
				e, err = intel.New(cfg.Intel, log)
			}
		case "rarity":
			if cfg.Rarity.Enabled {
				rc := cfg.Rarity
				if rc.Snapshot == "" && cfg.StateDir != "" {
					rc.Snapshot = filepath.Join(cfg.StateDir, "rarity.gob.gz")
				}
				e, err = rarity.New(rc, log)
			}
		}
		if err != nil {
			return fail(err)
		}
		if e != nil {
			es = append(es, e)
		}
	}
	return c.finish(es, deps)
}

func (c *Chain) finish(es []Enricher, deps Dependencies) (*Chain, error) {
	for _, e := range es {
		c.stages = append(c.stages, &Stage{Enricher: e})
	}
	if deps.Alerts != nil {
		c.sinks = append(c.sinks, deps.Alerts)
	}
	if c.cfg.Alerts.File != "" {
		f, err := OpenAlertFile(c.cfg.Alerts.File)
		if err != nil {
			for _, e := range es {
				e.Stop()
			}
			return nil, err
		}
		c.file = f
		c.sinks = append(c.sinks, f.Write)
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(&metrics{c}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Stages returns the stages in order.
func (c *Chain) Stages() []*Stage { return c.stages }

// Stats returns each stage's counters.
func (c *Chain) Stats() []StageStats {
	out := make([]StageStats, 0, len(c.stages))
	for _, s := range c.stages {
		st := StageStats{Name: s.Name(), Records: s.records.Load(), Hits: s.hits.Load(), Errors: s.errors.Load()}
		if t := s.timed.Load(); t > 0 {
			st.NsPerRecord = float64(s.nanos.Load()) / float64(t)
		}
		out = append(out, st)
	}
	return out
}

// Alerts counts the alerts published and dropped (queue full) so far.
func (c *Chain) Alerts() (published, dropped uint64) {
	return c.alertsOut.Load(), c.alertsDropped.Load()
}

// Start starts every enricher and the alert writer.
func (c *Chain) Start() error {
	for i, s := range c.stages {
		if err := s.Start(); err != nil {
			for _, o := range c.stages[:i] {
				o.Stop()
			}
			return err
		}
	}
	c.wg.Add(1)
	go c.writeAlerts()
	return nil
}

// Stop stops the enrichers (saving their state), then writes the queued
// alerts. Idempotent.
func (c *Chain) Stop() {
	c.stopOnce.Do(func() {
		for i := len(c.stages) - 1; i >= 0; i-- {
			c.stages[i].Stop()
		}
		close(c.stop)
		c.wg.Wait()
		c.drain()
		if c.file != nil {
			if err := c.file.Close(); err != nil {
				c.log.Error("alerts file", "err", err)
			}
		}
	})
}

// Enrich runs the chain on r, setting r.Enrichment (when any stage added
// something), and queues an alert when it matched threat intelligence.
func (c *Chain) Enrich(r *flow.Record) {
	if len(c.stages) == 0 {
		return
	}
	c.enrichRecords.Add(1)
	x := r.Enrichment
	if x == nil {
		x = &flow.Enrichment{}
	}
	timed := c.cfg.TimingSample != 0 && c.seq.Add(1)&(c.cfg.TimingSample-1) == 0
	for _, s := range c.stages {
		var t0 time.Time
		if timed {
			t0 = time.Now()
		}
		hit, err := s.Enrich(r, x)
		if timed {
			s.nanos.Add(uint64(time.Since(t0)))
			s.timed.Add(1)
		}
		s.records.Add(1)
		if hit {
			s.hits.Add(1)
		}
		if err != nil {
			s.errors.Add(1)
		}
	}
	if !empty(x) {
		r.Enrichment = x
	}
	if len(x.Threats) > 0 && (len(c.sinks) > 0) {
		a := Alert{Rule: "threat-intel", Record: *r}
		a.Record.Enrichment = x
		select {
		case c.alerts <- a:
		default:
			c.alertsDropped.Add(1)
		}
	}
}

func empty(x *flow.Enrichment) bool {
	return x.Source == (flow.EndpointEnrichment{}) && x.Destination == (flow.EndpointEnrichment{}) &&
		x.Domain == "" && len(x.Threats) == 0 && x.Rarity == nil
}

func (c *Chain) writeAlerts() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Alerts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.drain()
		}
	}
}

// drain writes every queued alert to every sink.
func (c *Chain) drain() {
	var batch []Alert
	for {
		select {
		case a := <-c.alerts:
			batch = append(batch, a)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	var errs error
	for _, s := range c.sinks {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = errors.Join(errs, s(ctx, batch))
		cancel()
	}
	if errs != nil {
		c.alertErrors.Add(1)
		c.log.Error("publish alerts", "alerts", len(batch), "err", errs)
		return
	}
	c.alertsOut.Add(uint64(len(batch)))
}

// Flush writes the queued alerts now (tests, shutdown).
func (c *Chain) Flush() { c.drain() }
