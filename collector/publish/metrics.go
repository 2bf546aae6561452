package publish

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	records *prometheus.CounterVec
	bytes   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, buffered func() float64) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "kafka",
			Name: "records_total", Help: "Records acknowledged by Kafka, per topic."}, []string{"topic"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "kafka",
			Name: "value_bytes_total", Help: "Record value bytes acknowledged by Kafka, per topic."}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "kafka",
			Name: "record_errors_total", Help: "Records Kafka did not acknowledge in time (their batch is not acked; the sensor resends), per topic."}, []string{"topic"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "tapir", Subsystem: "kafka",
			Name: "publish_duration_seconds", Help: "Time for Kafka to acknowledge one publish call.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"topic"}),
	}
	if reg == nil {
		return m, nil
	}
	bufGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tapir", Subsystem: "kafka",
		Name: "buffered_records", Help: "Records produced and not yet acknowledged by Kafka (stays up while Kafka is unreachable: batches are then not acked)."}, buffered)
	for _, c := range []prometheus.Collector{m.records, m.bytes, m.errors, m.latency, bufGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
