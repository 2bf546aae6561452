package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/collector/enrich"
	"github.com/tapir-sensor/tapir/collector/flowinput"
	"github.com/tapir-sensor/tapir/collector/ingest"
	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/collector/retention"
	"github.com/tapir-sensor/tapir/collector/searchindex"
	"github.com/tapir-sensor/tapir/internal/lifecycle"
	"github.com/tapir-sensor/tapir/storage"
)

// serve starts the components in order (store, registry, Kafka publisher,
// OpenSearch indexer, enrichment, flow input, ingest, API, retention,
// metrics), waits for
// SIGINT/SIGTERM or a store failure, and stops them in reverse order.
func serve(cfg *config.Config, logger *slog.Logger) (err error) {
	// SIGHUP reloads the API tokens file (enrichment files are watched).
	ctx, hup, stop := lifecycle.Signals()
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b := &builder{cfg: cfg, logger: logger, reg: reg}
	defer func() { err = errors.Join(err, b.stops.Stop()) }()
	c, err := b.start(ctx)
	if err != nil {
		return err
	}
	return c.wait(ctx, hup, logger)
}

// builder builds and starts the collector's components; each started
// component pushes its stop function on stops, the one shutdown path.
type builder struct {
	cfg    *config.Config
	logger *slog.Logger
	reg    *prometheus.Registry
	stops  lifecycle.Stack
}

// running are the started components serve's wait loop needs.
type running struct {
	store  storage.BlockStore
	failed <-chan struct{} // closed when the store fails for good
	web    *api.Server
}

// start builds and starts every component in dependency order.
func (b *builder) start(ctx context.Context) (*running, error) {
	store, err := b.startStore(ctx)
	if err != nil {
		return nil, err
	}
	sensors, err := registry.New(b.reg)
	if err != nil {
		return nil, err
	}
	writer, alerts, err := b.startKafka(ctx, store, sensors)
	if err != nil {
		return nil, err
	}
	if err := b.startSearchIndex(ctx); err != nil {
		return nil, err
	}
	chain, err := b.startEnrich(alerts)
	if err != nil {
		return nil, err
	}
	if err := b.startFlowInput(writer, chain); err != nil {
		return nil, err
	}
	if err := b.startIngest(writer, sensors, chain); err != nil {
		return nil, err
	}
	web, err := b.startAPI(store, sensors)
	if err != nil {
		return nil, err
	}
	if err := b.startRetention(store); err != nil {
		return nil, err
	}
	if err := b.startMetrics(); err != nil {
		return nil, err
	}
	return &running{store: store, failed: storeFailed(store), web: web}, nil
}

// startStore opens the configured store (tightening the embedded store's
// directory first).
func (b *builder) startStore(ctx context.Context) (storage.BlockStore, error) {
	if b.cfg.Store.Backend != "hbase" {
		if err := tightenTree(b.cfg.Store.Dir); err != nil {
			return nil, fmt.Errorf("store dir %s: %w", b.cfg.Store.Dir, err)
		}
	}
	store, err := openStore(ctx, b.cfg, b.logger.With("component", "store"), b.reg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	failed := storeFailed(store)
	b.stops.Push(func() error {
		select {
		case <-failed:
			// A failed Pebble may never finish closing (its failed flush
			// still counts as running); what was synced is on disk.
			return nil
		default:
		}
		return store.Close()
	})
	return store, nil
}

// startKafka starts the Kafka publisher when kafka.brokers is set: each
// batch's flow records are published before the store write
// (publish.WrapStore: the store's durable seq, which a reconnecting sensor
// is told, must never run ahead of Kafka), and the batch is acked after
// both; sensor health every kafka.health_interval; alerts to the alerts
// topic. Without Kafka the writer is the store and the alert sink nil.
func (b *builder) startKafka(ctx context.Context, store storage.BlockStore, sensors *registry.Registry) (storage.Writer, enrich.AlertSink, error) {
	if !b.cfg.Kafka.Enabled() {
		return store, nil, nil
	}
	pub, err := publish.New(b.cfg.Kafka, publish.Dependencies{Logger: b.logger.With("component", "kafka"), Registerer: b.reg})
	if err != nil {
		return nil, nil, err
	}
	if err := pub.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start kafka publisher: %w", err)
	}
	b.stops.PushFunc(pub.Stop)
	hctx, hstop := context.WithCancel(ctx)
	b.stops.PushFunc(hstop)
	go pub.RunHealth(hctx, sensors.Sensors)
	return pub.WrapStore(store), alertPublisher(pub), nil
}

// startSearchIndex starts the OpenSearch indexer (opensearch.urls set):
// it reads the flows topic with its own consumer group.
func (b *builder) startSearchIndex(ctx context.Context) error {
	if !b.cfg.OpenSearch.Enabled() {
		return nil
	}
	ix, err := searchindex.New(b.cfg.OpenSearch, searchindex.Dependencies{
		Kafka:  searchindex.Source{Brokers: b.cfg.Kafka.Brokers, Topic: b.cfg.Kafka.Topics.Flows},
		Logger: b.logger.With("component", "opensearch"), Registerer: b.reg})
	if err != nil {
		return err
	}
	if err := ix.Start(ctx); err != nil {
		return fmt.Errorf("start opensearch indexer: %w", err)
	}
	b.stops.PushFunc(ix.Stop)
	return nil
}

// alertPublisher sends enrichment alerts, as ECS JSON, to the alerts topic.
func alertPublisher(pub *publish.Publisher) enrich.AlertSink {
	return func(ctx context.Context, alerts []enrich.Alert) error {
		raw := make([]json.RawMessage, 0, len(alerts))
		for i := range alerts {
			b, err := json.Marshal(alerts[i].ECS())
			if err != nil {
				return err
			}
			raw = append(raw, b)
		}
		return pub.PublishAlerts(ctx, raw)
	}
}

// startEnrich starts the enrichment chain, which runs on every record
// before the store write. Alerts go to enrich.alerts.file and to alerts
// (the Kafka alerts topic; nil without Kafka).
func (b *builder) startEnrich(alerts enrich.AlertSink) (*enrich.Chain, error) {
	ecfg := b.cfg.Enrich
	if ecfg.StateDir == "" {
		ecfg.StateDir = filepath.Join(b.cfg.Store.Dir, "enrich")
	}
	chain, err := enrich.New(ecfg, enrich.Dependencies{Logger: b.logger.With("component", "enrich"), Registerer: b.reg, Alerts: alerts})
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	if err := chain.Start(); err != nil {
		return nil, fmt.Errorf("start enrich: %w", err)
	}
	b.stops.PushFunc(chain.Stop)
	return chain, nil
}

// startFlowInput starts the input for flows from routers and switches
// (flow_input.enabled): enriched and written (published first when Kafka
// is on) like sensor batches, under the sensor id "exporter:<address>".
func (b *builder) startFlowInput(writer storage.Writer, chain *enrich.Chain) error {
	if !b.cfg.FlowInput.Enabled {
		return nil
	}
	fcfg := b.cfg.FlowInput
	if fcfg.TemplatesFile == "" {
		fcfg.TemplatesFile = filepath.Join(b.cfg.Store.Dir, "flow-templates.json")
	}
	fin, err := flowinput.New(fcfg, flowinput.Dependencies{Logger: b.logger.With("component", "flow_input"), Registerer: b.reg,
		Deliver: flowDeliverer(writer, chain)})
	if err != nil {
		return err
	}
	if err := fin.Start(); err != nil {
		return fmt.Errorf("start flow input: %w", err)
	}
	b.stops.PushFunc(fin.Stop)
	return nil
}

// flowDeliverer enriches and writes exporters' flow batches, numbered
// from the start time so that sequence numbers are unique per run and
// increase across runs.
func flowDeliverer(writer storage.Writer, chain *enrich.Chain) func(context.Context, flowinput.Batch) error {
	var seq atomic.Uint64
	seq.Store(uint64(time.Now().UnixNano()))
	return func(ctx context.Context, b flowinput.Batch) error {
		for i := range b.Records {
			chain.Enrich(&b.Records[i])
		}
		_, err := writer.Write(ctx, &storage.Batch{SensorID: b.SensorID, Seq: seq.Add(1), Records: b.Records})
		return err
	}
}

// startIngest starts the sensors' gRPC ingest server.
func (b *builder) startIngest(writer storage.Writer, sensors *registry.Registry, chain *enrich.Chain) error {
	in, err := ingest.New(b.cfg.Ingest, ingest.Dependencies{Store: writer, Registry: sensors,
		Logger: b.logger.With("component", "ingest"), Registerer: b.reg, Enrich: chain.Enrich,
		PacketRetention: b.cfg.Retention.MaxAge})
	if err != nil {
		return err
	}
	if err := in.Start(nil); err != nil {
		return fmt.Errorf("start ingest: %w", err)
	}
	b.stops.PushFunc(in.Stop)
	return nil
}

// startAPI starts the investigators' HTTP API.
func (b *builder) startAPI(store storage.BlockStore, sensors *registry.Registry) (*api.Server, error) {
	deps := api.Dependencies{Store: store, Sensors: sensors,
		Logger: b.logger.With("component", "api"), Registerer: b.reg}
	if b.cfg.API.Search.Backend == api.BackendOpenSearch {
		srch, err := searchindex.NewSearcher(b.cfg.OpenSearch)
		if err != nil {
			return nil, fmt.Errorf("api search backend: %w", err)
		}
		deps.Records = srch
	}
	web, err := api.New(b.cfg.API, deps)
	if err != nil {
		return nil, err
	}
	if err := web.Start(); err != nil {
		return nil, fmt.Errorf("start api: %w", err)
	}
	b.stops.Push(web.Stop)
	return web, nil
}

// startRetention starts the retention runner.
func (b *builder) startRetention(store storage.BlockStore) error {
	ret, err := retention.New(b.cfg.Retention, store, b.logger, b.reg)
	if err != nil {
		return err
	}
	if err := ret.Start(); err != nil {
		return err
	}
	b.stops.PushFunc(ret.Stop)
	return nil
}

// startMetrics serves the Prometheus metrics on metrics.listen, if set.
func (b *builder) startMetrics() error {
	if b.cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{Registry: b.reg})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("metrics server stopped", "err", err)
		}
	}()
	b.stops.PushFunc(func() { _ = srv.Close() })
	b.logger.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

// wait runs until a signal (nil) or a store failure (errStoreFailed);
// SIGHUP reloads the API tokens.
func (r *running) wait(ctx context.Context, hup <-chan os.Signal, logger *slog.Logger) error {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-r.failed:
			return r.storeFailure(logger)
		case <-hup:
			if err := r.web.ReloadTokens(); err != nil {
				logger.Error("SIGHUP: tokens not reloaded; the previous ones stay", "err", err)
			}
		}
	}
	logger.Info("shutting down")
	return nil
}

// storeFailure arms the shutdown watchdog and returns the error that ends
// serve after the store failed.
func (r *running) storeFailure(logger *slog.Logger) error {
	time.AfterFunc(failedWatchdog, func() {
		logger.Error("shutdown after store failure did not finish; exiting", "exit_code", exitStoreFailed)
		os.Exit(exitStoreFailed)
	})
	logger.Error("store failed; stopping so that the supervisor restarts the collector once the disk has room",
		"err", storeErr(r.store), "exit_code", exitStoreFailed)
	return fmt.Errorf("%w: %w", errStoreFailed, storeErr(r.store))
}
