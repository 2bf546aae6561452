package engine

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/appmeta"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
)

// Stats are the engine's counters. Workers publish them every tick, so a
// reading lags the packet path by at most Config.TickInterval.
type Stats struct {
	Packets           uint64 // frames read from the sources
	WireBytes         uint64 // their wire length
	StoredPackets     uint64 // packets appended to blocks
	StoredBytes       uint64 // captured bytes appended to blocks
	HeldFragments     uint64 // non-first fragments that arrived before their first fragment (stored once attributed)
	Blocks            uint64 // blocks handed to the sink
	BlockBytes        uint64 // encoded bytes of those blocks
	BlockErrors       uint64 // blocks that could not be encoded (lost; logged)
	BlocksClosedEarly uint64 // blocks closed because open blocks exceeded max_buffered
	OpenBlockBytes    uint64 // gauge: bytes held for packets not yet in a block (the ring's pages)
	Records           uint64 // flow records handed to the sink
	SinkErrors        uint64 // sink calls that failed
	Timelines         uint64 // records that carried a timeline
	Metadata          appmeta.Stats
	Flows             flowtable.Stats
	Decode            decode.Counters
	Sources           []capture.Stats
}

func (s *Stats) add(o *Stats) {
	s.Packets += o.Packets
	s.WireBytes += o.WireBytes
	s.StoredPackets += o.StoredPackets
	s.StoredBytes += o.StoredBytes
	s.HeldFragments += o.HeldFragments
	s.Blocks += o.Blocks
	s.BlockBytes += o.BlockBytes
	s.BlockErrors += o.BlockErrors
	s.BlocksClosedEarly += o.BlocksClosedEarly
	s.OpenBlockBytes += o.OpenBlockBytes
	s.Records += o.Records
	s.SinkErrors += o.SinkErrors
	s.Timelines += o.Timelines
	s.Metadata.Add(&o.Metadata)
	s.Flows.Add(&o.Flows)
	s.Decode.Merge(&o.Decode)
}

// collector exports Stats as Prometheus metrics (tapir_sensor_*).
type collector struct {
	e     *Engine
	descs map[string]*prometheus.Desc
}

func newCollector(e *Engine) *collector {
	c := &collector{e: e, descs: map[string]*prometheus.Desc{}}
	for name, help := range metricHelp {
		c.descs[name] = prometheus.NewDesc("tapir_sensor_"+name, help, nil, nil)
	}
	c.descs["flows_ended_total"] = prometheus.NewDesc("tapir_sensor_flows_ended_total", "Flows ended, by reason.", []string{"reason"}, nil)
	c.descs["source_kernel_drops_total"] = prometheus.NewDesc("tapir_sensor_source_kernel_drops_total", "Packets the kernel dropped because a capture ring was full, per source.", []string{"source"}, nil)
	c.descs["source_kernel_packets_total"] = prometheus.NewDesc("tapir_sensor_source_kernel_packets_total", "Packets the kernel handed to a capture socket, per source.", []string{"source"}, nil)
	c.descs["source_freezes_total"] = prometheus.NewDesc("tapir_sensor_source_queue_freezes_total", "TPACKET_V3 ring freezes, per source.", []string{"source"}, nil)
	c.descs["metadata_protocol_flows_total"] = prometheus.NewDesc("tapir_sensor_metadata_protocol_flows_total", "Flows recognised by application protocol.", []string{"protocol"}, nil)
	c.descs["ip_protocol_packets_total"] = prometheus.NewDesc("tapir_sensor_ip_protocol_packets_total", "Packets by IP protocol.", []string{"protocol"}, nil)
	c.descs["tunnels_total"] = prometheus.NewDesc("tapir_sensor_tunnels_total", "Tunnel levels the decoder stripped (flows are keyed on the inner connection), by tunnel type.", []string{"type"}, nil)
	return c
}

var metricHelp = map[string]string{
	"packets_total":               "Frames read from the capture sources.",
	"wire_bytes_total":            "Wire length of the frames read.",
	"stored_packets_total":        "Packets appended to packet blocks.",
	"stored_bytes_total":          "Captured bytes appended to packet blocks.",
	"held_fragments_total":        "Non-first fragments that arrived before their first fragment (held, then stored in their flow).",
	"blocks_total":                "Packet blocks handed to the output.",
	"block_bytes_total":           "Encoded bytes of packet blocks handed to the output.",
	"block_errors_total":          "Packet blocks that could not be encoded (their packets are lost).",
	"blocks_closed_early_total":   "Blocks closed early because open blocks exceeded blocks.max_buffered.",
	"open_block_bytes":            "Bytes held for packets not yet in a block (blocks.max_buffered caps it).",
	"records_total":               "Flow records handed to the output.",
	"sink_errors_total":           "Output calls that failed.",
	"flows_active":                "Open flows.",
	"flows_created_total":         "Flow instances created.",
	"flow_updates_total":          "Periodic update records of long flows.",
	"budget_cut_packets_total":    "Packets not stored because their flow direction's capture budget was spent.",
	"budget_cut_bytes_total":      "Bytes not stored because of the capture budget.",
	"snaplen_cut_packets_total":   "Packets stored shorter than their wire length.",
	"fragments_orphaned_total":    "Non-first fragments counted in a port-less flow.",
	"fragment_tracker_full_total": "Fragmented datagrams forgotten early because the tracker was full.",
	"decode_truncated_total":      "Frames that ended before a header the decoder needed.",
	"decode_malformed_total":      "Frames with an impossible header field.",
	"decode_unsupported_total":    "Frames of a link type or encapsulation the decoder does not take apart (still stored).",
	"tunnel_depth_limit_total":    "Packets with a tunnel nested deeper than the decoder strips (keyed on the deepest level stripped).",
	"tunnel_filtered_total":       "Packets dropped by decode.tunnel_filter (their tunnel chain does not match it): not accounted in flows, not stored.",
	"tunnel_fragments_total":      "Tunnel packets whose outer IP packet is a fragment (keyed on the outer header, not decapsulated).",
	"tunnel_opaque_total":         "Tunnels whose payload held no complete IP header (non-IP or cut short; keyed on the tunnel itself).",
	"timelines_total":             "Flow records that carried a timeline.",
	"tunnelled_flows_total":       "Flows whose first packet came through a tunnel: their records carry its tunnel chain (tapir.tunnels).",
	"tunnel_chain_changed_total":  "Packets whose tunnel chain differs from their flow's first packet's (the flow's record keeps the first chain).",
	"tunnel_flows_total":          "Flows of a tunnel's own connection (the outermost non-mirror tunnel's outer 5-tuple, tapir.tunnel_flow: true): packets and bytes as on the wire, packets stored with the inner flows.",
	"clock_steps_total":           "Times packet time stepped back by a second or more (merged captures, clock steps); timers keep running on a monotonic clock.",
	"metadata_flows_total":        "Flows whose payload the metadata extractor looked at.",
	"metadata_completed_total":    "Flows whose metadata was complete within the packet budget.",
	"metadata_parse_errors_total": "Flow directions whose metadata was given up as malformed.",
	"metadata_gaps_total":         "TCP flow directions given up at a sequence gap (reassembly is in order only).",
	"metadata_overflows_total":    "TCP flow directions whose first message exceeded metadata.max_bytes.",
	"metadata_packet_limit_total": "Flow directions that spent metadata.max_packets before completing.",
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.Stats()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, float64(v))
	}
	counter("packets_total", s.Packets)
	counter("wire_bytes_total", s.WireBytes)
	counter("stored_packets_total", s.StoredPackets)
	counter("stored_bytes_total", s.StoredBytes)
	counter("held_fragments_total", s.HeldFragments)
	counter("blocks_total", s.Blocks)
	counter("block_bytes_total", s.BlockBytes)
	counter("block_errors_total", s.BlockErrors)
	counter("blocks_closed_early_total", s.BlocksClosedEarly)
	gauge("open_block_bytes", s.OpenBlockBytes)
	counter("records_total", s.Records)
	counter("sink_errors_total", s.SinkErrors)
	gauge("flows_active", s.Flows.Active)
	counter("flows_created_total", s.Flows.Created)
	counter("flow_updates_total", s.Flows.Updates)
	counter("budget_cut_packets_total", s.Flows.BudgetCutPackets)
	counter("budget_cut_bytes_total", s.Flows.BudgetCutBytes)
	counter("snaplen_cut_packets_total", s.Flows.TruncatedPackets)
	counter("fragments_orphaned_total", s.Flows.FragmentsOrphaned)
	counter("fragment_tracker_full_total", s.Flows.FragmentTrackerFull)
	counter("decode_truncated_total", s.Decode.Truncated)
	counter("decode_malformed_total", s.Decode.Malformed)
	counter("decode_unsupported_total", s.Decode.Unsupported)
	counter("tunnel_depth_limit_total", s.Decode.TunnelDepthLimit)
	counter("tunnel_filtered_total", s.Decode.TunnelFiltered)
	counter("tunnel_fragments_total", s.Decode.TunnelFragments)
	counter("tunnel_opaque_total", s.Decode.TunnelOpaque)
	for t := flow.TunnelIPIP; t < flow.NumTunnelTypes; t++ {
		ch <- prometheus.MustNewConstMetric(c.descs["tunnels_total"], prometheus.CounterValue, float64(s.Decode.Tunnels[t]), t.String())
	}
	counter("timelines_total", s.Timelines)
	counter("tunnelled_flows_total", s.Flows.TunnelledFlows)
	counter("tunnel_chain_changed_total", s.Flows.TunnelChainChanged)
	counter("tunnel_flows_total", s.Flows.TunnelFlows)
	counter("clock_steps_total", s.Flows.ClockSteps)
	m := &s.Metadata
	counter("metadata_flows_total", m.Flows)
	counter("metadata_completed_total", m.Completed)
	counter("metadata_parse_errors_total", m.ParseErrors)
	counter("metadata_gaps_total", m.Gaps)
	counter("metadata_overflows_total", m.Overflows)
	counter("metadata_packet_limit_total", m.PacketLimit)
	for _, p := range []struct {
		name string
		n    uint64
	}{{"dns", m.DNS}, {"tls", m.TLS}, {"http", m.HTTP}, {"ssh", m.SSH}} {
		ch <- prometheus.MustNewConstMetric(c.descs["metadata_protocol_flows_total"], prometheus.CounterValue, float64(p.n), p.name)
	}
	for r := flow.ReasonFIN; int(r) < len(s.Flows.Ended); r++ {
		ch <- prometheus.MustNewConstMetric(c.descs["flows_ended_total"], prometheus.CounterValue, float64(s.Flows.Ended[r]), r.String())
	}
	for i, src := range s.Sources {
		name := c.e.sourceName(i)
		ch <- prometheus.MustNewConstMetric(c.descs["source_kernel_drops_total"], prometheus.CounterValue, float64(src.KernelDrops), name)
		ch <- prometheus.MustNewConstMetric(c.descs["source_kernel_packets_total"], prometheus.CounterValue, float64(src.KernelPackets), name)
		ch <- prometheus.MustNewConstMetric(c.descs["source_freezes_total"], prometheus.CounterValue, float64(src.QueueFreezes), name)
	}
	for p, n := range s.Decode.IPProto {
		if n > 0 {
			ch <- prometheus.MustNewConstMetric(c.descs["ip_protocol_packets_total"], prometheus.CounterValue, float64(n), flow.ProtoName(uint8(p)))
		}
	}
}
