// Package storemetrics holds the tapir_store_* metrics every storage
// backend exports, so that dashboards read the same names whatever the
// backend.
package storemetrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a store's counters. Safe for concurrent use.
type Metrics struct {
	Writes        prometheus.Counter
	WriteErrors   prometheus.Counter
	Deduplicated  prometheus.Counter
	BlocksWritten prometheus.Counter
	BytesWritten  prometheus.Counter
	Records       prometheus.Counter
	WriteLatency  prometheus.Histogram
	ExpiredBlocks prometheus.Counter
	ExpiredBytes  prometheus.Counter
	DataBytes     prometheus.Gauge
}

// New builds the metrics and registers them on reg (nil: not registered).
// latencyHelp and dataHelp say what the backend's write latency and data
// size measure.
func New(reg prometheus.Registerer, latencyHelp, dataHelp string) (*Metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "store", Name: name, Help: help})
	}
	m := &Metrics{
		Writes:        c("writes_total", "Batches applied."),
		WriteErrors:   c("write_errors_total", "Batches that failed to apply (not acknowledged)."),
		Deduplicated:  c("batches_deduplicated_total", "Batches skipped because their (sensor, seq) was already applied."),
		BlocksWritten: c("blocks_written_total", "Packet blocks written."),
		BytesWritten:  c("bytes_written_total", "Encoded packet block bytes written."),
		Records:       c("records_written_total", "Flow records written (older segments not counted)."),
		WriteLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tapir", Subsystem: "store", Name: "write_duration_seconds",
			Help:    latencyHelp,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		ExpiredBlocks: c("expired_blocks_total", "Packet blocks removed by retention."),
		ExpiredBytes:  c("expired_bytes_total", "Encoded packet block bytes removed by retention."),
		DataBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tapir", Subsystem: "store", Name: "data_bytes", Help: dataHelp,
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.Writes, m.WriteErrors, m.Deduplicated, m.BlocksWritten,
		m.BytesWritten, m.Records, m.WriteLatency, m.ExpiredBlocks, m.ExpiredBytes, m.DataBytes} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// Wrote counts one applied batch: its new blocks, their encoded bytes,
// its stored flow records, and the time it took since start.
func (m *Metrics) Wrote(blocks, bytes, records int64, start time.Time) {
	m.Writes.Inc()
	m.BlocksWritten.Add(float64(blocks))
	m.BytesWritten.Add(float64(bytes))
	m.Records.Add(float64(records))
	m.WriteLatency.Observe(time.Since(start).Seconds())
}

// Expired counts packet blocks removed by retention and their bytes.
func (m *Metrics) Expired(blocks, bytes int64) {
	m.ExpiredBlocks.Add(float64(blocks))
	m.ExpiredBytes.Add(float64(bytes))
}
