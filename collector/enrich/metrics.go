package enrich

import "github.com/prometheus/client_golang/prometheus"

var (
	descRecords = prometheus.NewDesc("tapir_enrich_records_total", "Records that went through an enricher.", []string{"enricher"}, nil)
	descHits    = prometheus.NewDesc("tapir_enrich_hits_total", "Records an enricher found something for.", []string{"enricher"}, nil)
	descErrors  = prometheus.NewDesc("tapir_enrich_errors_total", "Records on which an enricher failed.", []string{"enricher"}, nil)
	descCost    = prometheus.NewDesc("tapir_enrich_ns_per_record", "Mean time an enricher spends per record (sampled).", []string{"enricher"}, nil)
	descAlerts  = prometheus.NewDesc("tapir_enrich_alerts_total", "Alerts published.", nil, nil)
	descDropped = prometheus.NewDesc("tapir_enrich_alerts_dropped_total", "Alerts dropped because the queue was full.", nil, nil)
	descAErrs   = prometheus.NewDesc("tapir_enrich_alert_publish_errors_total", "Alert batches a sink failed to take.", nil, nil)
)

// metrics exports the chain's counters (read at scrape time: the record
// path only touches atomics).
type metrics struct{ c *Chain }

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descHits, descErrors, descCost, descAlerts, descDropped, descAErrs} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, s := range m.c.Stats() {
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(s.Records), s.Name)
		ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(s.Hits), s.Name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.Errors), s.Name)
		ch <- prometheus.MustNewConstMetric(descCost, prometheus.GaugeValue, s.NsPerRecord, s.Name)
	}
	ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.CounterValue, float64(m.c.alertsOut.Load()))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(m.c.alertsDropped.Load()))
	ch <- prometheus.MustNewConstMetric(descAErrs, prometheus.CounterValue, float64(m.c.alertErrors.Load()))
}
