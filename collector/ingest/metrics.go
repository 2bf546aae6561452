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
	// admission and limits
	inflightBytes     prometheus.Gauge
	budgetWaits       prometheus.Counter
	budgetWaitSeconds prometheus.Counter
	overLimit         prometheus.Counter
	sharedID          prometheus.Counter
	// expiredOnArrival counts, per sensor, the packets stored in blocks
	// already older than the packet retention.
	expiredOnArrival *prometheus.CounterVec
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
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapir_collector_ingest_inflight_bytes",
			Help: "Bytes of received batches not yet stored and acked (bounded by max_inflight_bytes).",
		}),
		budgetWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_budget_waits_total",
			Help: "Times a stream waited for in-flight budget before reading its next batch (backpressure to the sensor).",
		}),
		budgetWaitSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_budget_wait_seconds_total",
			Help: "Time streams spent waiting for in-flight budget.",
		}),
		overLimit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_over_limit_batches_total",
			Help: "Batches rejected because a string, list or count exceeded its limit (also counted as rejected).",
		}),
		sharedID: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_shared_id_streams_total",
			Help: "Streams opened under a sensor id that already had a stream with another epoch (hosts sharing an id, or a reinstalled sensor).",
		}),
		expiredOnArrival: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_collector_ingest_expired_on_arrival_packets_total",
			Help: "Packets stored in blocks whose every packet was already older than the packet retention (retention.max_age) on arrival: the next retention run removes them. By sensor.",
		}, []string{"sensor"}),
	}
	for _, r := range []string{"stored", "duplicate", "rejected", "store_error"} {
		m.batches.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.batches, m.records, m.blocks, m.blockBytes,
			m.streams, m.activeStream, m.ackLatency, m.configPushes,
			m.inflightBytes, m.budgetWaits, m.budgetWaitSeconds, m.overLimit, m.sharedID, m.expiredOnArrival} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
