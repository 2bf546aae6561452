package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/config"
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

// exporter is the collector stream sink.
type exporter interface {
	AddRecord(rec *flow.Record) error
	AddBlock(encoded []byte) error
	Stop() error
}

func startExport(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (exporter, error) {
	return nil, errors.New("streaming to a collector is not wired yet")
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
