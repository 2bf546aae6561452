package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/tapir-sensor/tapir/sensor/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// memory_limit, unless the GOMEMLIMIT environment variable already set one
// (the operator's explicit choice wins) or the key is 0. It returns the
// limit in force (math.MaxInt64 when there is none).
func applyMemoryLimit(cfg *config.Config, logger *slog.Logger) int64 {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		limit := debug.SetMemoryLimit(-1)
		logger.Info("memory limit", "source", "GOMEMLIMIT", "bytes", limit)
		return limit
	}
	if cfg.MemoryLimit == 0 {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(cfg.MemoryLimit)
	logger.Info("memory limit", "source", "memory_limit", "bytes", cfg.MemoryLimit)
	return cfg.MemoryLimit
}
