package registry

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descConnected = prometheus.NewDesc("tapir_collector_sensor_connected",
		"1 while the sensor has an open stream to this collector.", []string{"sensor"}, nil)
	descStreams = prometheus.NewDesc("tapir_collector_sensor_streams",
		"Open streams from the sensor.", []string{"sensor"}, nil)
	descLastSeen = prometheus.NewDesc("tapir_collector_sensor_last_seen_timestamp_seconds",
		"When the sensor last sent anything (Unix seconds).", []string{"sensor"}, nil)
	descDurableSeq = prometheus.NewDesc("tapir_collector_sensor_durable_seq",
		"Highest batch sequence number durable for the sensor.", []string{"sensor"}, nil)
	descBatches = prometheus.NewDesc("tapir_collector_sensor_batches_total",
		"Batches received from the sensor and acked (stored or duplicate).", []string{"sensor"}, nil)
	descDuplicates = prometheus.NewDesc("tapir_collector_sensor_duplicate_batches_total",
		"Batches the store already held (resent after reconnect).", []string{"sensor"}, nil)
	descFlows = prometheus.NewDesc("tapir_collector_sensor_flows_total",
		"Flow records stored from the sensor.", []string{"sensor"}, nil)
	descBlocks = prometheus.NewDesc("tapir_collector_sensor_blocks_total",
		"Packet blocks stored from the sensor.", []string{"sensor"}, nil)
	descBytes = prometheus.NewDesc("tapir_collector_sensor_block_bytes_total",
		"Encoded packet block bytes stored from the sensor.", []string{"sensor"}, nil)
	descRejected = prometheus.NewDesc("tapir_collector_sensor_rejected_batches_total",
		"Batches from the sensor refused as malformed.", []string{"sensor"}, nil)
	descStoreErrors = prometheus.NewDesc("tapir_collector_sensor_store_errors_total",
		"Batches from the sensor the store failed to write.", []string{"sensor"}, nil)
	descStat = prometheus.NewDesc("tapir_collector_sensor_stat",
		"The sensor's own latest cumulative counters, as it reported them.", []string{"sensor", "counter"}, nil)
)

// collector exports the registry at scrape time, so a metric never
// disagrees with Sensors().
type collector struct{ r *Registry }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descStreams, descLastSeen, descDurableSeq,
		descBatches, descDuplicates, descFlows, descBlocks, descBytes, descRejected, descStoreErrors, descStat} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Sensors() {
		id := s.ID
		g := func(d *prometheus.Desc, v float64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{id}, l...)...)
		}
		k := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), id)
		}
		conn := 0.0
		if s.Connected {
			conn = 1
		}
		g(descConnected, conn)
		g(descStreams, float64(s.Streams))
		if !s.LastSeen.IsZero() {
			g(descLastSeen, float64(s.LastSeen.UnixNano())/1e9)
		}
		g(descDurableSeq, float64(s.DurableSeq))
		k(descBatches, s.Batches)
		k(descDuplicates, s.Duplicates)
		k(descFlows, s.Flows)
		k(descBlocks, s.Blocks)
		k(descBytes, s.Bytes)
		k(descRejected, s.Rejected)
		k(descStoreErrors, s.StoreErrors)
		names := make([]string, 0, len(s.Stats))
		for n := range s.Stats {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			g(descStat, float64(s.Stats[n]), n)
		}
	}
}
