// Command tapir-collector receives flow records and packet blocks from
// tapir sensors over mutually authenticated gRPC, stores them (embedded
// Pebble store by default), applies retention, and serves flow records and
// pcaps to investigators over an authorized, audited HTTP API.
//
//	tapir-collector --config /etc/tapir/collector.yaml
//	tapir-collector check-config --config /etc/tapir/collector.yaml
//	tapir-collector verify --config /etc/tapir/collector.yaml
//
// verify (with the collector stopped) checks the embedded store: its
// write-ahead logs, then the checksum of every block of every sstable; it
// prints one line per file and exits 0 when all are intact, 65 otherwise.
//
// Exit codes: 0 after SIGINT/SIGTERM, 2 for a bad command line or
// configuration, 75 (EX_TEMPFAIL) when the store failed (disk full or an
// I/O error in the embedded store's log, manifest or flushes): the
// collector exits rather than spin, its supervisor restarts it
// (Restart=on-failure), and the restart replays the synced log once space
// is back. 65 (EX_DATAERR) when the store is corrupt at open (a damaged
// write-ahead log under store.pebble.wal_recovery: strict; --salvage-wal
// recovers what is intact); 1 for any other failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
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
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/hbase"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

func main() {
	os.Exit(withPrintDefaults(run, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes besides 0, 1 and 2.
const (
	// exitStoreFailed: the store failed (disk full, I/O error); restart
	// once the cause is gone.
	exitStoreFailed = 75
	// exitStoreCorrupt: the store is corrupt at open; an operator must
	// look (see --salvage-wal).
	exitStoreCorrupt = 65
)

// errStoreFailed ends serve when the store fails while running.
var errStoreFailed = errors.New("store failed")

// failedWatchdog bounds the shutdown after a store failure: components
// blocked on the failed store must not keep the process up.
const failedWatchdog = 20 * time.Second

// exitCode maps serve's error to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errStoreFailed), errors.Is(err, pebble.ErrFailed), errors.Is(err, pebble.ErrDiskFull), isDiskFull(err):
		return exitStoreFailed
	case errors.Is(err, storage.ErrCorrupt):
		return exitStoreCorrupt
	default:
		return 1
	}
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func run(args []string, stdout, stderr io.Writer) int {
	check, verify := false, false
	if len(args) > 0 && args[0] == "check-config" {
		check, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "verify" {
		verify, args = true, args[1:]
	}
	fs := flag.NewFlagSet("tapir-collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file")
	dataDir := fs.String("data-dir", "", "store directory (overrides store.dir)")
	ingestAddr := fs.String("listen", "", "sensor gRPC address (overrides ingest.listen)")
	apiAddr := fs.String("api-listen", "", "API address (overrides api.listen)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	salvageWAL := fs.Bool("salvage-wal", false, "open a store whose write-ahead log is damaged: keep a copy, drop the damaged records, report them (store.pebble.wal_recovery: salvage)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "tapir-collector: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintf(stderr, "tapir-collector: %v\n", err)
			return 2
		}
	}
	if *dataDir != "" {
		cfg.Store.Dir = *dataDir
	}
	if *ingestAddr != "" {
		cfg.Ingest.Listen = *ingestAddr
	}
	if *apiAddr != "" {
		cfg.API.Listen = *apiAddr
	}
	if *salvageWAL {
		cfg.Store.Pebble.WALRecovery = pebble.WALSalvage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tapir-collector: %v\n", err)
		return 2
	}
	if check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	setPrivateUmask()
	if verify {
		return verifyStore(&cfg, logger, stdout, stderr)
	}
	if err := serve(&cfg, logger); err != nil {
		code := exitCode(err)
		logger.Error("collector failed", "err", err, "exit_code", code)
		return code
	}
	return 0
}

// serve starts the components in order (store, registry, ingest, API,
// retention, metrics), waits for SIGINT/SIGTERM or a component failure,
// and stops them in reverse order.
func serve(cfg *config.Config, logger *slog.Logger) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the API tokens file (enrichment files are watched).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if cfg.Store.Backend != "hbase" {
		if err := tightenTree(cfg.Store.Dir); err != nil {
			return fmt.Errorf("store dir %s: %w", cfg.Store.Dir, err)
		}
	}
	store, err := openStore(ctx, cfg, logger.With("component", "store"), reg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	failed := storeFailed(store)
	defer func() {
		select {
		case <-failed:
			// A failed Pebble may never finish closing (its failed flush
			// still counts as running); what was synced is on disk.
			return
		default:
		}
		err = errors.Join(err, store.Close())
	}()

	sensors, err := registry.New(reg)
	if err != nil {
		return err
	}
	// Enrichment chain: runs on every record before the store write.
	// Alerts go to enrich.alerts.file and to alertSink (the Kafka alerts
	// topic once it is configured; nil until then).
	ecfg := cfg.Enrich
	if ecfg.StateDir == "" {
		ecfg.StateDir = filepath.Join(cfg.Store.Dir, "enrich")
	}
	var alertSink enrich.AlertSink
	// Kafka (kafka.brokers set): each batch's flow records are published
	// before the store write (publish.WrapStore: the store's durable seq,
	// which a reconnecting sensor is told, must never run ahead of Kafka),
	// and the batch is acked after both; sensor health every
	// kafka.health_interval; alerts to the alerts topic.
	writer := storage.Writer(store)
	if cfg.Kafka.Enabled() {
		pub, err := publish.New(cfg.Kafka, publish.Dependencies{Logger: logger.With("component", "kafka"), Registerer: reg})
		if err != nil {
			return err
		}
		if err := pub.Start(ctx); err != nil {
			return fmt.Errorf("start kafka publisher: %w", err)
		}
		defer pub.Stop()
		writer = pub.WrapStore(store)
		alertSink = func(ctx context.Context, alerts []enrich.Alert) error {
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
		hctx, hstop := context.WithCancel(ctx)
		defer hstop()
		go pub.RunHealth(hctx, sensors.Sensors)
	}
	chain, err := enrich.New(ecfg, enrich.Dependencies{Logger: logger.With("component", "enrich"), Registerer: reg, Alerts: alertSink})
	if err != nil {
		return fmt.Errorf("enrich: %w", err)
	}
	if err := chain.Start(); err != nil {
		return fmt.Errorf("start enrich: %w", err)
	}
	defer chain.Stop()

	// Flows from routers and switches (flow_input.enabled): enriched and
	// written (published first when Kafka is on) like sensor batches,
	// under the sensor id "exporter:<address>".
	if cfg.FlowInput.Enabled {
		fcfg := cfg.FlowInput
		if fcfg.TemplatesFile == "" {
			fcfg.TemplatesFile = filepath.Join(cfg.Store.Dir, "flow-templates.json")
		}
		var seq atomic.Uint64
		seq.Store(uint64(time.Now().UnixNano())) // unique per run, increasing across runs
		fin, err := flowinput.New(fcfg, flowinput.Dependencies{Logger: logger.With("component", "flow_input"), Registerer: reg,
			Deliver: func(ctx context.Context, b flowinput.Batch) error {
				for i := range b.Records {
					chain.Enrich(&b.Records[i])
				}
				_, err := writer.Write(ctx, &storage.Batch{SensorID: b.SensorID, Seq: seq.Add(1), Records: b.Records})
				return err
			}})
		if err != nil {
			return err
		}
		if err := fin.Start(); err != nil {
			return fmt.Errorf("start flow input: %w", err)
		}
		defer fin.Stop()
	}

	in, err := ingest.New(cfg.Ingest, ingest.Dependencies{Store: writer, Registry: sensors,
		Logger: logger.With("component", "ingest"), Registerer: reg, Enrich: chain.Enrich})
	if err != nil {
		return err
	}
	if err := in.Start(nil); err != nil {
		return fmt.Errorf("start ingest: %w", err)
	}
	defer in.Stop()

	web, err := api.New(cfg.API, api.Dependencies{Store: store, Sensors: sensors,
		Logger: logger.With("component", "api"), Registerer: reg})
	if err != nil {
		return err
	}
	if err := web.Start(); err != nil {
		return fmt.Errorf("start api: %w", err)
	}
	defer func() { err = errors.Join(err, web.Stop()) }()

	ret, err := retention.New(cfg.Retention, store, logger, reg)
	if err != nil {
		return err
	}
	if err := ret.Start(); err != nil {
		return err
	}
	defer ret.Stop()

	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "err", err)
			}
		}()
		defer srv.Close()
		logger.Info("metrics listening", "addr", ln.Addr().String())
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-failed:
			time.AfterFunc(failedWatchdog, func() {
				logger.Error("shutdown after store failure did not finish; exiting", "exit_code", exitStoreFailed)
				os.Exit(exitStoreFailed)
			})
			logger.Error("store failed; stopping so that the supervisor restarts the collector once the disk has room",
				"err", storeErr(store), "exit_code", exitStoreFailed)
			return fmt.Errorf("%w: %w", errStoreFailed, storeErr(store))
		case <-hup:
			if err := web.ReloadTokens(); err != nil {
				logger.Error("SIGHUP: tokens not reloaded; the previous ones stay", "err", err)
			}
		}
	}
	logger.Info("shutting down")
	return nil
}

// verifyStore runs `tapir-collector verify`.
func verifyStore(cfg *config.Config, logger *slog.Logger, stdout, stderr io.Writer) int {
	if cfg.Store.Backend != "pebble" {
		fmt.Fprintln(stderr, "tapir-collector verify: only the embedded (pebble) store can be verified")
		return 2
	}
	if _, err := os.Stat(cfg.Store.Dir); err != nil {
		fmt.Fprintf(stderr, "tapir-collector verify: %v\n", err)
		return 2
	}
	st, err := pebble.Open(cfg.Store.Dir, cfg.Store.Pebble, logger.With("component", "store"), nil)
	if err != nil {
		fmt.Fprintf(stderr, "tapir-collector verify: %v\n", err)
		return exitCode(err)
	}
	defer st.Close()
	checks, err := st.Verify(context.Background())
	for _, c := range checks {
		state := "ok"
		if c.Err != nil {
			state = "DAMAGED: " + c.Err.Error()
		}
		fmt.Fprintf(stdout, "%s\tL%d\t%d bytes\ttables %s\t%s\n", c.File, c.Level, c.Size, c.Tables, state)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tapir-collector verify: %v\n", err)
		return exitCode(err)
	}
	fmt.Fprintf(stdout, "store ok: %d sstables, write-ahead logs intact\n", len(checks))
	return 0
}

// failingStore is a store that can fail for good while running (the
// embedded Pebble store).
type failingStore interface {
	Failed() <-chan struct{}
	Err() error
}

// storeFailed returns the channel closed when the store fails; nil (never
// ready) for stores that do not fail that way.
func storeFailed(st storage.BlockStore) <-chan struct{} {
	if f, ok := st.(failingStore); ok {
		return f.Failed()
	}
	return nil
}

func storeErr(st storage.BlockStore) error {
	if f, ok := st.(failingStore); ok {
		return f.Err()
	}
	return nil
}

// openStore opens the configured backend: the embedded Pebble store in
// store.dir, or HBase (store.hbase; the table is created if missing).
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (storage.BlockStore, error) {
	switch cfg.Store.Backend {
	case "hbase":
		octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		logger.Info("opening hbase store", "zookeeper", cfg.Store.HBase.ZooKeeper, "table", cfg.Store.HBase.Table)
		return hbase.Open(octx, cfg.Store.HBase, logger, reg)
	default:
		return pebble.Open(cfg.Store.Dir, cfg.Store.Pebble, logger, reg)
	}
}
