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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/hbase"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

func main() {
	if printVersion(os.Args[1:], os.Stdout) {
		return
	}
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

// flags are the command line; set ones override the configuration file.
type flags struct {
	configPath, dataDir, ingestAddr, apiAddr, logLevel string
	salvageWAL                                         bool
}

func run(args []string, stdout, stderr io.Writer) int {
	check, verify, reindex := false, false, false
	if len(args) > 0 && args[0] == "check-config" {
		check, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "verify" {
		verify, args = true, args[1:]
	} else if len(args) > 0 && args[0] == "reindex" {
		reindex, args = true, args[1:]
	}
	f, code := parseFlags(args, stderr)
	if f == nil {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "tapir-collector: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "tapir-collector: %v\n", err)
		return 2
	}
	if check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	setPrivateUmask()
	if reindex {
		return reindexStore(&cfg, logger, stdout, stderr)
	}
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

// parseFlags parses the command line; nil and the exit code when the run
// ends here (-h, a bad flag).
func parseFlags(args []string, stderr io.Writer) (*flags, int) {
	var f flags
	fs := flag.NewFlagSet("tapir-collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "config", "", "YAML configuration file")
	fs.StringVar(&f.dataDir, "data-dir", "", "store directory (overrides store.dir)")
	fs.StringVar(&f.ingestAddr, "listen", "", "sensor gRPC address (overrides ingest.listen)")
	fs.StringVar(&f.apiAddr, "api-listen", "", "API address (overrides api.listen)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.salvageWAL, "salvage-wal", false, "open a store whose write-ahead log is damaged: keep a copy, drop the damaged records, report them (store.pebble.wal_recovery: salvage)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	return &f, 0
}

// loadConfig reads the configuration file (defaults without one), applies
// the flags and validates the result.
func loadConfig(f *flags) (config.Config, error) {
	cfg := config.DefaultConfig()
	if f.configPath != "" {
		var err error
		if cfg, err = config.Load(f.configPath); err != nil {
			return cfg, err
		}
	}
	if f.dataDir != "" {
		cfg.Store.Dir = f.dataDir
	}
	if f.ingestAddr != "" {
		cfg.Ingest.Listen = f.ingestAddr
	}
	if f.apiAddr != "" {
		cfg.API.Listen = f.apiAddr
	}
	if f.salvageWAL {
		cfg.Store.Pebble.WALRecovery = pebble.WALSalvage
	}
	return cfg, cfg.Validate()
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
