package hbase

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	writes        prometheus.Counter
	writeErrors   prometheus.Counter
	deduplicated  prometheus.Counter
	blocksWritten prometheus.Counter
	bytesWritten  prometheus.Counter
	records       prometheus.Counter
	writeLatency  prometheus.Histogram
	expiredBlocks prometheus.Counter
	expiredBytes  prometheus.Counter
	dataBytes     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "store", Name: name, Help: help})
	}
	m := &metrics{
		writes:        c("writes_total", "Batches applied."),
		writeErrors:   c("write_errors_total", "Batches that failed to apply (not acknowledged)."),
		deduplicated:  c("batches_deduplicated_total", "Batches skipped because their (sensor, seq) was already applied."),
		blocksWritten: c("blocks_written_total", "Packet blocks written."),
		bytesWritten:  c("bytes_written_total", "Encoded packet block bytes written."),
		records:       c("records_written_total", "Flow records written (older segments not counted)."),
		writeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tapir", Subsystem: "store", Name: "write_duration_seconds",
			Help:    "Time to apply one batch (every row acknowledged by HBase).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		expiredBlocks: c("expired_blocks_total", "Packet blocks removed by retention."),
		expiredBytes:  c("expired_bytes_total", "Encoded packet block bytes removed by retention."),
		dataBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tapir", Subsystem: "store", Name: "data_bytes",
			Help: "Encoded packet block bytes stored, as of the last size-based Expire.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.writes, m.writeErrors, m.deduplicated, m.blocksWritten,
		m.bytesWritten, m.records, m.writeLatency, m.expiredBlocks, m.expiredBytes, m.dataBytes} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
