package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics (tapir_api_*).
type metrics struct {
	requests    *prometheus.CounterVec   // endpoint, code
	sentBytes   *prometheus.CounterVec   // endpoint
	sentPackets prometheus.Counter       // pcap packets sent
	latency     *prometheus.HistogramVec // endpoint
	inflight    prometheus.Gauge
	busy        prometheus.Counter
	truncated   prometheus.Counter
	// partialExpired counts pcap answers missing packets retention removed.
	partialExpired prometheus.Counter
	auditEntries   prometheus.Counter
	auditErrors    prometheus.Counter
	auditRotations prometheus.Counter
	// auditRefused counts retrievals refused because the audit log could
	// not be written (fail closed).
	auditRefused prometheus.Counter
	// deniedLimited counts denied requests answered 429 and not audited
	// one by one (per-source token bucket).
	deniedLimited prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_api_requests_total", Help: "API requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapir_api_sent_bytes_total", Help: "Response body bytes sent by endpoint.",
		}, []string{"endpoint"}),
		sentPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_sent_packets_total", Help: "Packets sent in pcap answers.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tapir_api_retrieval_duration_seconds",
			Help:    "Time to serve a retrieval, streaming included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"endpoint"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tapir_api_inflight_retrievals", Help: "Retrievals being served.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_busy_rejections_total", Help: "Retrievals refused because max_concurrent were running.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_truncated_total", Help: "pcap answers cut at a packet or byte cap.",
		}),
		partialExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_packets_expired_partial_total", Help: "pcap answers served without some of their flows' packets, which retention removed (X-Tapir-Packets-Expired).",
		}),
		auditEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_audit_entries_total", Help: "Audit log entries written.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_audit_errors_total", Help: "Audit log entries that could not be written (logged instead).",
		}),
		auditRotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_audit_rotations_total", Help: "Audit log rotations (audit.max_bytes reached).",
		}),
		auditRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_audit_unavailable_refusals_total", Help: "Retrievals refused 503 because the audit log could not be written (audit.fail_open false).",
		}),
		deniedLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapir_api_denied_rate_limited_total", Help: "Denied requests answered 429 and not audited one by one (per-source limit audit.denied_rate).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.sentBytes, m.sentPackets, m.latency, m.inflight,
		m.busy, m.truncated, m.partialExpired, m.auditEntries, m.auditErrors, m.auditRotations, m.auditRefused, m.deniedLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
