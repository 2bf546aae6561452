package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/internal/lifecycle"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/config"
	"github.com/tapir-sensor/tapir/sensor/ebpf"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/ipfix"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// runSensor wires capture (eBPF datapath, sources), outputs and engine,
// runs until the input ends, a signal arrives or the collectors refuse the
// sensor, then flushes and stops everything in reverse order.
func runSensor(o *options, cfg *config.Config, stdout io.Writer, logger *slog.Logger) (err error) {
	ctx, hup, stop := lifecycle.Signals() // SIGHUP reopens --flows-out
	defer stop()
	reg := prometheus.NewRegistry()
	var stops lifecycle.Stack
	defer func() { err = errors.Join(err, stops.Stop()) }()

	dp, sources, err := startCapture(o, cfg, logger, reg, &stops)
	if err != nil {
		return err
	}
	outs, err := startOutputs(cfg, sources, stdout, dp, logger, reg, &stops)
	if err != nil {
		return err
	}
	eng, err := newEngine(cfg, sources, outs, dp, logger, reg)
	if err != nil {
		return err
	}
	if err := startMetrics(cfg.Metrics.Listen, reg, logger, len(o.readFiles) == 0); err != nil {
		return err
	}
	start := time.Now()
	if err := eng.Start(); err != nil {
		return err
	}
	outs.waitForEnd(ctx, eng, hup, logger)
	runErr := eng.Stop()
	outs.finish(ctx, o.drainTimeout, logger)
	logFinished(eng.Stats(), start, logger)
	return runErr
}

// startCapture starts the eBPF datapath (when asked for) and opens the
// sources, pushing their stops.
func startCapture(o *options, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer, stops *lifecycle.Stack) (*ebpf.Datapath, []capture.Source, error) {
	dp := startEBPF(o, cfg, logger, reg)
	if dp != nil {
		stops.PushFunc(func() {
			if err := dp.Stop(); err != nil {
				logger.Warn("stop eBPF datapath", "err", err)
			}
		})
	}
	sources, err := openSources(o, cfg, logger)
	if err != nil {
		return dp, nil, err
	}
	stops.PushFunc(func() {
		for _, s := range sources {
			s.Close()
		}
	})
	return dp, sources, nil
}

// outputs are the run's sinks: flows file, blocks directory, collector
// stream, IPFIX exporter.
type outputs struct {
	sinks  output.Multi
	stream *streamSink // nil without collectors
	reopen func()      // SIGHUP: reopen --flows-out (logrotate); nil if none
}

// startOutputs opens every configured output, pushing each one's close.
func startOutputs(cfg *config.Config, sources []capture.Source, stdout io.Writer, dp *ebpf.Datapath,
	logger *slog.Logger, reg prometheus.Registerer, stops *lifecycle.Stack) (*outputs, error) {
	var outs outputs
	if p := cfg.Output.FlowsOut; p != "" {
		fj, reopen, err := openFlowsOut(p, stdout, logger)
		if err != nil {
			return nil, err
		}
		outs.add(fj, fj.Close, stops)
		outs.reopen = reopen
	}
	if d := cfg.Output.BlocksOut; d != "" {
		bc := block.DefaultDirWriterConfig()
		bc.Dir = d
		bo, err := output.NewBlocks(bc)
		if err != nil {
			return nil, fmt.Errorf("blocks output: %w", err)
		}
		outs.add(bo, bo.Close, stops)
	}
	if len(cfg.Output.Collector.Collectors) > 0 {
		ex, err := startExport(cfg, sources, logger, reg, onPushedConfig(dp, logger))
		if err != nil {
			return nil, err
		}
		outs.add(ex, func() error { return errors.Join(ex.Stop(), ex.deliveryErr()) }, stops)
		outs.stream = ex
	}
	if cfg.Output.IPFIX.Collector != "" {
		ix, err := startIPFIX(cfg, logger, reg)
		if err != nil {
			return nil, err
		}
		outs.add(ix, stopIPFIX(ix, cfg.Output.IPFIX.Collector, logger), stops)
	}
	return &outs, nil
}

// add appends a sink and pushes its close.
func (outs *outputs) add(s engine.Sink, closeFn func() error, stops *lifecycle.Stack) {
	outs.sinks = append(outs.sinks, s)
	stops.Push(closeFn)
}

// openFlowsOut opens the ECS JSON lines output (stdout for "-") and, for
// a file, the function that reopens it on SIGHUP.
func openFlowsOut(p string, stdout io.Writer, logger *slog.Logger) (*output.FlowsJSON, func(), error) {
	if p == "-" {
		return output.NewFlowsJSON(stdout, nil), nil, nil
	}
	f, err := output.OpenFlowsFile(p, false)
	if err != nil {
		return nil, nil, fmt.Errorf("flows output: %w", err)
	}
	fj := output.NewFlowsJSON(f, f)
	reopen := func() {
		f, err := output.OpenFlowsFile(p, true)
		if err == nil {
			err = fj.Switch(f, f)
		}
		if err != nil {
			logger.Error("SIGHUP: reopen flows output", "path", p, "err", err)
			return
		}
		logger.Info("SIGHUP: flows output reopened", "path", p)
	}
	return fj, reopen, nil
}

// startIPFIX starts the IPFIX exporter.
func startIPFIX(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*ipfix.Exporter, error) {
	ix, err := ipfix.New(cfg.Output.IPFIX, ipfix.Dependencies{Logger: logger.With("component", "ipfix"), Registerer: reg})
	if err == nil {
		err = ix.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("ipfix output: %w", err)
	}
	return ix, nil
}

// stopIPFIX stops the IPFIX exporter and logs what it sent.
func stopIPFIX(ix *ipfix.Exporter, collector string, logger *slog.Logger) func() error {
	return func() error {
		err := ix.Stop()
		st := ix.Stats()
		logger.Info("ipfix export finished", "collector", collector, "records", st.Records,
			"messages", st.Messages, "send_errors", st.SendErrors, "dropped_messages", st.DroppedMessages)
		return err
	}
}

// newEngine builds the engine over the sources and outputs (through the
// eBPF datapath's sink when there is one) and attaches its counters to
// the collector stream.
func newEngine(cfg *config.Config, sources []capture.Source, outs *outputs, dp *ebpf.Datapath,
	logger *slog.Logger, reg prometheus.Registerer) (*engine.Engine, error) {
	var sink engine.Sink = outs.sinks
	if dp != nil {
		sink = dp.WrapSink(outs.sinks)
	}
	// Build blocks only when an output takes them (the IPFIX output
	// takes none).
	cfg.Engine.Blocks.Disabled = cfg.Output.BlocksOut == "" && len(cfg.Output.Collector.Collectors) == 0
	eng, err := engine.New(cfg.Engine, engine.Dependencies{Sources: sources, Sink: sink, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	if outs.stream != nil {
		f := func() map[string]uint64 { return engineCounters(eng.Stats()) }
		outs.stream.statsFn.Store(&f)
	}
	return eng, nil
}

// waitForEnd returns when the engine is done (input read), a signal
// arrives or the collectors refuse the sensor for good; SIGHUP reopens
// the flows file.
func (outs *outputs) waitForEnd(ctx context.Context, eng *engine.Engine, hup <-chan os.Signal, logger *slog.Logger) {
	var refused <-chan struct{} // closed when the collectors refuse the sensor for good
	if outs.stream != nil {
		refused = outs.stream.Failed()
	}
	for {
		select {
		case <-eng.Done():
			return
		case <-ctx.Done():
			logger.Info("signal received; flushing flows and blocks")
			return
		case <-refused:
			logger.Error("stopping: the collector refused this sensor", "err", outs.stream.Err())
			return
		case <-hup:
			if outs.reopen == nil {
				logger.Info("SIGHUP: nothing to reload")
				continue
			}
			outs.reopen()
		}
	}
}

// finish sends the run's final counters and, offline (no signal), waits
// up to drainTimeout for the collector to acknowledge everything (a
// signal, a refusal or the timeout leaves the rest in the spool).
func (outs *outputs) finish(ctx context.Context, drainTimeout time.Duration, logger *slog.Logger) {
	if outs.stream == nil {
		return
	}
	outs.stream.FlushStats()
	if ctx.Err() != nil {
		return
	}
	logger.Info("capture read; waiting for the collector's acknowledgements", "timeout", drainTimeout)
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	if !outs.stream.WaitAcked(dctx) {
		logger.Warn("collector has not acknowledged everything; the rest stays in the spool for the next run",
			"timeout", drainTimeout)
	}
}

// logFinished logs the run's totals and any kernel drops.
func logFinished(st engine.Stats, start time.Time, logger *slog.Logger) {
	logger.Info("capture finished", "packets", st.Packets, "flows", st.Flows.Created, "records", st.Records,
		"blocks", st.Blocks, "block_bytes", st.BlockBytes, "stored_packets", st.StoredPackets,
		"budget_cut_packets", st.Flows.BudgetCutPackets, "evicted", st.Flows.Evicted(),
		"decode_truncated", st.Decode.Truncated, "decode_malformed", st.Decode.Malformed, "clock_steps", st.Flows.ClockSteps, "blocks_closed_early", st.BlocksClosedEarly, "block_errors", st.BlockErrors,
		"seconds", time.Since(start).Seconds())
	for i, s := range st.Sources {
		if s.KernelDrops > 0 || s.QueueFreezes > 0 {
			logger.Warn("kernel dropped packets", "source", i, "drops", s.KernelDrops, "freezes", s.QueueFreezes)
		}
	}
}
