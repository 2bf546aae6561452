package flowinput

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the input's Prometheus counters. Per-exporter series carry
// the label exporter (the exporter's IP address).
type metrics struct {
	datagrams      *prometheus.CounterVec
	records        *prometheus.CounterVec
	templateMisses *prometheus.CounterVec
	decodeErrors   *prometheus.CounterVec
	sequenceGaps   *prometheus.CounterVec
	dropped        *prometheus.CounterVec // reason: queue_full, deliver_error, too_many_exporters
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "flow_input", Name: name, Help: help}, labels)
	}
	m := &metrics{
		datagrams:      vec("datagrams_total", "Datagrams received per exporter.", "exporter"),
		records:        vec("records_total", "Flow records decoded per exporter.", "exporter"),
		templateMisses: vec("template_misses_total", "Data sets that arrived before their template, per exporter.", "exporter"),
		decodeErrors:   vec("decode_errors_total", "Datagrams (or parts) that failed to decode, per exporter.", "exporter"),
		sequenceGaps:   vec("sequence_gaps_total", "Datagrams (NetFlow v9, sFlow) or records (NetFlow v5, IPFIX) missing according to the exporter's sequence numbers.", "exporter"),
		dropped:        vec("records_dropped_total", "Flow records dropped before the store, by reason.", "reason"),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.datagrams, m.records, m.templateMisses, m.decodeErrors, m.sequenceGaps, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// ExporterStats are one exporter's counters since the input started.
type ExporterStats struct {
	Datagrams      uint64
	Records        uint64
	TemplateMisses uint64 // data sets whose template was unknown
	DecodeErrors   uint64 // malformed or truncated datagrams (or parts)
	SequenceGaps   uint64 // missing datagrams (v9, sFlow) or records (v5, IPFIX)
}

// exporterCounters mirrors ExporterStats atomically and holds the
// exporter's Prometheus children so the datagram path does no lookups.
type exporterCounters struct {
	datagrams, records, templateMisses, decodeErrors, sequenceGaps atomic.Uint64

	pDatagrams, pRecords, pTemplateMisses, pDecodeErrors, pSequenceGaps prometheus.Counter
}

func (m *metrics) forExporter(addr string) *exporterCounters {
	return &exporterCounters{
		pDatagrams:      m.datagrams.WithLabelValues(addr),
		pRecords:        m.records.WithLabelValues(addr),
		pTemplateMisses: m.templateMisses.WithLabelValues(addr),
		pDecodeErrors:   m.decodeErrors.WithLabelValues(addr),
		pSequenceGaps:   m.sequenceGaps.WithLabelValues(addr),
	}
}

func (c *exporterCounters) addDatagram() { c.datagrams.Add(1); c.pDatagrams.Inc() }
func (c *exporterCounters) addRecords(n int) {
	c.records.Add(uint64(n))
	c.pRecords.Add(float64(n))
}
func (c *exporterCounters) addTemplateMiss() { c.templateMisses.Add(1); c.pTemplateMisses.Inc() }
func (c *exporterCounters) addDecodeError()  { c.decodeErrors.Add(1); c.pDecodeErrors.Inc() }
func (c *exporterCounters) addGap(n uint64) {
	c.sequenceGaps.Add(n)
	c.pSequenceGaps.Add(float64(n))
}

func (c *exporterCounters) snapshot() ExporterStats {
	return ExporterStats{
		Datagrams: c.datagrams.Load(), Records: c.records.Load(), TemplateMisses: c.templateMisses.Load(),
		DecodeErrors: c.decodeErrors.Load(), SequenceGaps: c.sequenceGaps.Load(),
	}
}
