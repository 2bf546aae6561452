package searchindex

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the indexer's Prometheus metrics.
type metrics struct {
	docs        *prometheus.CounterVec // result: indexed, stale
	dropped     *prometheus.CounterVec // reason: the error type, or decode
	retries     *prometheus.CounterVec // cause: request, document
	bulkSeconds prometheus.Histogram
	lag         prometheus.Gauge
	commitErrs  prometheus.Counter
	deleted     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		docs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tapir_searchindex_documents_total",
			Help: "Flow records written to OpenSearch (result=indexed), or skipped because the index holds a newer segment of the flow (result=stale)."}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tapir_searchindex_dropped_total",
			Help: "Flow records never indexed: refused by OpenSearch for good (reason: its error type, e.g. mapper_parsing_exception) or undecodable (reason=decode)."}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tapir_searchindex_retries_total",
			Help: "Retries of a failed _bulk request (cause=request) or of documents refused for a transient reason, 429 or 5xx (cause=document)."}, []string{"cause"}),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tapir_searchindex_bulk_seconds",
			Help: "Duration of successful _bulk requests.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tapir_searchindex_lag_records",
			Help: "Records of the flows topic not yet indexed: high watermark minus the next offset to read, summed over the partitions fetched."}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_searchindex_commit_errors_total",
			Help: "Kafka offset commits that failed after their records were indexed (they are read and indexed again: idempotent)."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "tapir_searchindex_indices_deleted_total",
			Help: "Daily indices deleted by retention (retention_days)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.docs, m.dropped, m.retries, m.bulkSeconds, m.lag, m.commitErrs, m.deleted} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register searchindex metrics: %w", err)
		}
	}
	return m, nil
}
