package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/config"
	"github.com/tapir-sensor/tapir/sensor/export"
)

// startMetrics serves /metrics in the background. Offline runs only serve
// it when the config asks explicitly (the default address is for daemons).
func startMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger, live bool) error {
	if addr == "" || !live {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	go func() {
		if err := http.Serve(ln, mux); err != nil && !errors.Is(err, net.ErrClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	logger.Info("metrics", "addr", ln.Addr().String())
	return nil
}

// startExport starts the collector stream. The engine's counters ride
// along as SensorStats once the engine exists (statsFn is set later).
func startExport(cfg *config.Config, sources []capture.Source, logger *slog.Logger, reg prometheus.Registerer, onConfig func(*tapirv1.SensorConfig)) (*streamSink, error) {
	ec := cfg.Output.Collector
	ec.SensorID = cfg.Engine.SensorID
	ec.Version = version
	if h, err := os.Hostname(); err == nil && ec.Hostname == "" {
		ec.Hostname = h
	}
	for _, s := range sources {
		for _, ifc := range s.Interfaces() {
			ec.Interfaces = append(ec.Interfaces, export.Interface{Name: ifc.Name, LinkType: uint32(ifc.LinkType), Snaplen: uint32(ifc.SnapLen)})
		}
	}
	ec.Capabilities = []string{"flows", "blocks"}
	ss := &streamSink{}
	ex, err := export.New(ec, export.Dependencies{Logger: logger.With("component", "export"), Registerer: reg,
		Stats: ss.stats, OnConfig: onConfig})
	if err != nil {
		return nil, err
	}
	if err := ex.Start(); err != nil {
		return nil, err
	}
	ss.Exporter = ex
	logger.Info("streaming to collectors", "collectors", ec.Collectors, "tls", !ec.TLS.Insecure, "spool", ec.Spool.Dir)
	return ss, nil
}

// streamSink is the exporter with the engine's counters attached.
type streamSink struct {
	*export.Exporter
	statsFn atomic.Pointer[func() map[string]uint64]
}

func (s *streamSink) stats() map[string]uint64 {
	if f := s.statsFn.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// openLive opens Workers AF_PACKET sockets per interface, each interface's
// sockets in their own fanout group.
func openLive(cfg *config.Config, logger *slog.Logger) ([]capture.Source, error) {
	var out []capture.Source
	fail := func(err error) ([]capture.Source, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	for i, iface := range cfg.Capture.Interfaces {
		lc := cfg.Capture.LiveConfig
		lc.Interface = iface
		if lc.FanoutGroup == 0 && cfg.Capture.Workers > 1 {
			lc.FanoutGroup = uint16((os.Getpid()*8 + i) & 0xffff)
			if lc.FanoutGroup == 0 {
				lc.FanoutGroup = 1
			}
		} else if lc.FanoutGroup != 0 {
			lc.FanoutGroup += uint16(i)
		}
		srcs, err := capture.OpenLiveGroup(lc, cfg.Capture.Workers)
		if err != nil {
			return fail(fmt.Errorf("capture on %s: %w", iface, err))
		}
		for _, s := range srcs {
			out = append(out, s)
		}
		logger.Info("capturing", "interface", iface, "workers", cfg.Capture.Workers, "fanout_group", lc.FanoutGroup,
			"snap_len", lc.SnapLen, "ring_bytes", lc.BlockSize*lc.NumBlocks, "filter", lc.Filter)
	}
	return out, nil
}

// deliveryErr says, once the exporter stopped, whether the run failed to
// deliver: the collectors refused the sensor for good, or batches were
// lost (rejected by the collector as malformed, not written to the
// spool, dropped from a full spool, or corrupt in it). Batches left
// unacknowledged but safely spooled are not an error: the next run
// sends them.
func (s *streamSink) deliveryErr() error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("nothing more can be delivered: %w", err)
	}
	st := s.Stats()
	lost := st.Rejected + st.SpoolErrors + st.Spool.DroppedBatches + st.Spool.CorruptRecords
	if lost == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d batches lost (rejected by the collector %d, spool write errors %d, dropped from a full spool %d, corrupt in the spool %d)",
		errUndelivered, lost, st.Rejected, st.SpoolErrors, st.Spool.DroppedBatches, st.Spool.CorruptRecords)
}

// errUndelivered: some of the run's data never reached the collector.
var errUndelivered = errors.New("data not delivered")
