// Package engine is the sensor's data path. Each worker owns one packet
// source (a file, or one AF_PACKET socket of a fanout group, so both
// directions of a flow reach the same worker), decodes every frame,
// accounts it to its flow in the worker's own flow table, appends the
// bytes the capture budget allows to the worker's ring of pages in arrival
// order (ring.go), and hands each flow's packets as a block, and flow
// records, to the Sink. Workers share
// nothing on the per-packet path: no locks, no allocation.
//
// Every packet is stored somewhere: IP packets in their flow's blocks,
// everything else (ARP, LLDP, frames the decoder could not take apart) in
// link-layer pseudo flows keyed by MAC addresses and EtherType. Only the
// capture budget and the snap length keep bytes out of blocks, and both
// are counted per flow and per worker.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// Sink receives the sensor's output; it is output.Sink (see there for
// the contract: safe for concurrent use, copy what is kept).
type Sink = output.Sink

// Dependencies are what an Engine is wired to.
type Dependencies struct {
	// Sources are read by one worker each. Their order is kept in
	// Stats.Sources.
	Sources []capture.Source
	// Sink receives blocks and records.
	Sink Sink
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Engine runs the workers. New is inert; Start launches one goroutine per
// source; Wait returns when every source ended (files) or Stop was called;
// Stop ends capture, flushes every open flow (reason end-of-capture) and
// block to the sink, and waits.
type Engine struct {
	cfg     Config
	deps    Dependencies
	log     *slog.Logger
	workers []*worker
	ids     flowtable.IDCounter

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	mu       sync.Mutex
	firstErr error
	stopOnce sync.Once
}

// New validates the configuration and builds the workers without starting
// anything.
func New(cfg Config, deps Dependencies) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(deps.Sources) == 0 {
		return nil, fmt.Errorf("%w: no packet source", ErrInvalidConfig)
	}
	if deps.Sink == nil {
		return nil, fmt.Errorf("%w: no sink", ErrInvalidConfig)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, deps: deps, log: deps.Logger.With("component", "engine"), done: make(chan struct{})}
	for i, src := range deps.Sources {
		w, err := newWorker(i, &e.cfg, src, deps.Sink, &e.ids, e.log)
		if err != nil {
			return nil, err
		}
		// blocks.max_buffered is the sensor's one cap: each worker's
		// ring gets an equal share (at least one block's worth).
		w.setMaxBuffered(max(cfg.Blocks.MaxBuffered/int64(len(deps.Sources)), int64(cfg.Blocks.MaxBytes)))
		e.workers = append(e.workers, w)
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(newCollector(e)); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return e, nil
}

// Start launches the workers.
func (e *Engine) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	for _, w := range e.workers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := w.run(ctx); err != nil {
				e.setErr(err)
			}
		}()
	}
	go func() {
		e.wg.Wait()
		close(e.done)
	}()
	return nil
}

// Done is closed when every worker has finished and flushed.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Wait blocks until every worker has finished and returns the first error
// a worker met (a damaged capture file, a sink that failed).
func (e *Engine) Wait() error {
	<-e.done
	return e.Err()
}

// Err returns the first error a worker met, if any.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.firstErr
}

func (e *Engine) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstErr == nil {
		e.firstErr = err
	}
}

// Stop ends capture: each worker stops reading (a live source within its
// poll timeout), ends its open flows with reason end-of-capture and hands
// everything to the sink. Stop is idempotent and waits for the workers.
func (e *Engine) Stop() error {
	e.stopOnce.Do(func() {
		if e.cancel != nil {
			e.cancel()
			<-e.done
		}
	})
	return e.Err()
}

// Stats returns the engine's counters summed over workers, and per source.
func (e *Engine) Stats() Stats {
	var s Stats
	for _, w := range e.workers {
		ws := w.snapshot()
		s.add(&ws)
		if src, err := w.src.Stats(); err == nil {
			s.Sources = append(s.Sources, src)
		}
	}
	return s
}

// isEOF reports the normal end of a file source.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// sourceName labels source i in metrics: its first interface's name and
// the worker number.
func (e *Engine) sourceName(i int) string {
	w := e.workers[i]
	return fmt.Sprintf("%s/%d", w.iface, i)
}
