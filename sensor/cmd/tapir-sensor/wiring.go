package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

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

func openLive(cfg *config.Config, logger *slog.Logger) ([]capture.Source, error) {
	return nil, errors.New("live capture is not wired yet")
}
