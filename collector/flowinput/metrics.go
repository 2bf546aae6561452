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
	sequenceResets *prometheus.CounterVec
	dropped        *prometheus.CounterVec // reason: queue_full, deliver_error
	// droppedDatagrams counts datagrams not decoded at all, by reason
	// (too_many_exporters).
	droppedDatagrams *prometheus.CounterVec
	// socketDrops counts datagrams the kernel dropped because a
	// listener's receive buffer was full, per listener.
	socketDrops *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tapir", Subsystem: "flow_input", Name: name, Help: help}, labels)
	}
	m := &metrics{
		datagrams:        vec("datagrams_total", "Datagrams received per exporter.", "exporter"),
		records:          vec("records_total", "Flow records decoded per exporter.", "exporter"),
		templateMisses:   vec("template_misses_total", "Data sets that arrived before their template, per exporter.", "exporter"),
		decodeErrors:     vec("decode_errors_total", "Datagrams (or parts) that failed to decode, per exporter.", "exporter"),
		sequenceGaps:     vec("sequence_gaps_total", "Datagrams (NetFlow v9, sFlow) or records (NetFlow v5, IPFIX) missing according to the exporter's sequence numbers (at most 65536 per message; larger jumps are resets).", "exporter"),
		sequenceResets:   vec("sequence_resets_total", "Sequence numbers that went backwards or jumped by more than 65536: exporter restarts, not counted as gaps.", "exporter"),
		dropped:          vec("records_dropped_total", "Flow records dropped before the store, by reason.", "reason"),
		droppedDatagrams: vec("datagrams_dropped_total", "Datagrams dropped undecoded, by reason (too_many_exporters: from an exporter beyond max_exporters).", "reason"),
		socketDrops:      vec("socket_drops_total", "Datagrams the kernel dropped because the listener's receive buffer was full (SO_RXQ_OVFL), per listener.", "listener"),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.datagrams, m.records, m.templateMisses, m.decodeErrors, m.sequenceGaps, m.sequenceResets, m.dropped, m.droppedDatagrams, m.socketDrops} {
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
	SequenceResets uint64 // sequence numbers that went backwards or jumped too far
}

// exporterCounters mirrors ExporterStats atomically and holds the
// exporter's Prometheus children so the datagram path does no lookups.
type exporterCounters struct {
	datagrams, records, templateMisses, decodeErrors, sequenceGaps, sequenceResets atomic.Uint64

	pDatagrams, pRecords, pTemplateMisses, pDecodeErrors, pSequenceGaps, pSequenceResets prometheus.Counter
}

func (m *metrics) forExporter(addr string) *exporterCounters {
	return &exporterCounters{
		pDatagrams:      m.datagrams.WithLabelValues(addr),
		pRecords:        m.records.WithLabelValues(addr),
		pTemplateMisses: m.templateMisses.WithLabelValues(addr),
		pDecodeErrors:   m.decodeErrors.WithLabelValues(addr),
		pSequenceGaps:   m.sequenceGaps.WithLabelValues(addr),
		pSequenceResets: m.sequenceResets.WithLabelValues(addr),
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

func (c *exporterCounters) addReset() { c.sequenceResets.Add(1); c.pSequenceResets.Inc() }

func (c *exporterCounters) snapshot() ExporterStats {
	return ExporterStats{
		Datagrams: c.datagrams.Load(), Records: c.records.Load(), TemplateMisses: c.templateMisses.Load(),
		DecodeErrors: c.decodeErrors.Load(), SequenceGaps: c.sequenceGaps.Load(), SequenceResets: c.sequenceResets.Load(),
	}
}
