package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	batches      *prometheus.CounterVec // result: stored, duplicate, rejected, store_error
	records      prometheus.Counter
	blocks       prometheus.Counter
	blockBytes   prometheus.Counter
	streams      *prometheus.CounterVec // result: accepted, refused_*
	activeStream prometheus.Gauge
	ackLatency   prometheus.Histogram
	configPushes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_batches_total",
			Help: "Batches received, by result (stored, duplicate, rejected, store_error).",
		}, []string{"result"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_records_total", Help: "Flow records stored.",
		}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_blocks_total", Help: "Packet blocks stored.",
		}),
		blockBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_block_bytes_total", Help: "Encoded packet block bytes stored.",
		}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_streams_total",
			Help: "Sensor streams opened, by result (accepted, or refused_<reason>).",
		}, []string{"result"}),
		activeStream: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapir_collector_ingest_active_streams", Help: "Sensor streams open now.",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tapir_collector_ingest_ack_latency_seconds",
			Help:    "Time from a batch's receipt to its ack (conversion and durable store write).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		configPushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_config_pushes_total", Help: "SensorConfig messages sent to sensors.",
		}),
	}
	for _, r := range []string{"stored", "duplicate", "rejected", "store_error"} {
		m.batches.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.batches, m.records, m.blocks, m.blockBytes,
			m.streams, m.activeStream, m.ackLatency, m.configPushes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
