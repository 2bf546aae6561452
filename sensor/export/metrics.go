package export

import "github.com/prometheus/client_golang/prometheus"

type metrics struct{}

func newMetrics(e *Exporter, reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return &metrics{}, nil
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	spoolStat := func(f func(s *Exporter) float64) func() float64 {
		return func() float64 {
			if !e.started.Load() {
				return 0
			}
			return f(e)
		}
	}
	cs := []prometheus.Collector{
		counter("tapir_sensor_export_batches_total", "Batches closed.", func() float64 { return float64(e.nBatches.Load()) }),
		counter("tapir_sensor_export_sent_total", "Batch sends, resends included.", func() float64 { return float64(e.nSent.Load()) }),
		gauge("tapir_sensor_export_acked_seq", "Highest batch seq acked by the collector.", func() float64 { return float64(e.Stats().Acked) }),
		counter("tapir_sensor_export_rejected_total", "Batches the collector refused as malformed (dropped).", func() float64 { return float64(e.nRejected.Load()) }),
		counter("tapir_sensor_export_reconnects_total", "Collector stream reconnects.", func() float64 { return float64(e.nReconnects.Load()) }),
		counter("tapir_sensor_export_spooled_total", "Batches written to the spool.", func() float64 { return float64(e.nSpooled.Load()) }),
		counter("tapir_sensor_export_spool_errors_total", "Batches lost to spool errors.", func() float64 { return float64(e.nSpoolErrors.Load()) }),
		gauge("tapir_sensor_export_queue_batches", "Unacked batches held in memory.", func() float64 { return float64(e.Stats().QueueBatches) }),
		gauge("tapir_sensor_export_inflight_batches", "Batches sent and not yet acked.", func() float64 { return float64(e.Stats().Inflight) }),
		gauge("tapir_sensor_export_connected", "1 while a collector stream is up.", func() float64 {
			if e.Stats().Connected {
				return 1
			}
			return 0
		}),
		gauge("tapir_sensor_spool_bytes", "Spool size on disk.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().Bytes) })),
		gauge("tapir_sensor_spool_batches", "Unacked batches in the spool.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().Batches) })),
		counter("tapir_sensor_spool_dropped_batches_total", "Unacked batches dropped because the spool was full.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().DroppedBatches) })),
		counter("tapir_sensor_spool_dropped_bytes_total", "Bytes of those batches.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().DroppedBytes) })),
		counter("tapir_sensor_spool_corrupt_records_total", "Corrupt spool records skipped (their batches lost); the records after them are kept.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().CorruptRecords) })),
		counter("tapir_sensor_spool_torn_records_total", "Torn records truncated when the spool was opened.", spoolStat(func(e *Exporter) float64 { return float64(e.spool.Stats().TornRecords) })),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &metrics{}, nil
}
