package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// reindexStore runs `tapir-collector reindex`: it rebuilds the flow
// search index of a stopped collector's embedded store from its flow
// records (the store is locked while the collector runs).
func reindexStore(cfg *config.Config, logger *slog.Logger, stdout, stderr io.Writer) int {
	if cfg.Store.Backend != "pebble" {
		fmt.Fprintln(stderr, "tapir-collector reindex: only the embedded (pebble) store has a search index")
		return 2
	}
	if _, err := os.Stat(cfg.Store.Dir); err != nil {
		fmt.Fprintf(stderr, "tapir-collector reindex: %v\n", err)
		return 2
	}
	cfg.Store.Pebble.SearchIndex = true
	st, err := pebble.Open(cfg.Store.Dir, cfg.Store.Pebble, logger.With("component", "store"), nil)
	if err != nil {
		fmt.Fprintf(stderr, "tapir-collector reindex: %v\n", err)
		return exitCode(err)
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := st.RebuildIndex(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tapir-collector reindex: %v\n", err)
		return exitCode(err)
	}
	fmt.Fprintf(stdout, "search index rebuilt: %d flow records indexed\n", n)
	return 0
}
