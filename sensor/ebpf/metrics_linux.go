//go:build linux

package ebpf

import "github.com/prometheus/client_golang/prometheus"

// collector exports KernelCounters, read at scrape time.
type collector struct {
	d     *Datapath
	descs map[string]*prometheus.Desc
}

var counterHelp = map[string]string{
	"accounted_packets":       "Packets the eBPF program accounted to a flow.",
	"untracked_packets":       "Packets the kernel did not track (not TCP/UDP/SCTP over IP, fragments); captured whole.",
	"new_flows":               "Kernel flow map entries created.",
	"map_full":                "Packets whose flow could not be added to the full kernel flow map (captured whole).",
	"event_drops":             "Ring buffer events lost.",
	"cutoff_passed":           "Packets the cut-off passed under the budget.",
	"cutoff_passed_control":   "TCP SYN/FIN/RST the cut-off passed past the budget.",
	"cutoff_passed_pinned":    "Packets of pinned flows passed past the budget.",
	"cutoff_passed_keepalive": "Keepalive packets passed past the budget.",
	"cutoff_packets":          "Packets the cut-off dropped before the copy to userspace.",
	"cutoff_bytes":            "Wire bytes of the packets the cut-off dropped.",
	"drained_idle":            "Idle kernel flow entries deleted by the drain loop.",
	"deleted_on_record":       "Kernel flow entries deleted when their final record went out.",
	"records_merged":          "Flow records that took the kernel's counters.",
	"records_unmatched":       "Flow records of tracked protocols without a kernel entry.",
}

func newCollector(d *Datapath) *collector {
	c := &collector{d: d, descs: map[string]*prometheus.Desc{}}
	for n, h := range counterHelp {
		c.descs[n] = prometheus.NewDesc("tapir_sensor_ebpf_"+n+"_total", h, nil, nil)
	}
	c.descs["map_entries"] = prometheus.NewDesc("tapir_sensor_ebpf_map_entries", "Kernel flow map entries at the last drain.", nil, nil)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	k, err := c.d.Counters()
	if err != nil {
		return
	}
	for n, v := range map[string]uint64{
		"accounted_packets": k.Accounted, "untracked_packets": k.Untracked, "new_flows": k.NewFlows,
		"map_full": k.MapFull, "event_drops": k.EventDrops, "cutoff_passed": k.Passed,
		"cutoff_passed_control": k.PassedControl, "cutoff_passed_pinned": k.PassedPinned,
		"cutoff_passed_keepalive": k.PassedKeepalive, "cutoff_packets": k.CutPackets,
		"cutoff_bytes": k.CutBytes, "drained_idle": k.DrainedIdle, "deleted_on_record": k.DeletedOnRecord,
		"records_merged": k.RecordsMerged, "records_unmatched": k.RecordsUnmatched,
	} {
		ch <- prometheus.MustNewConstMetric(c.descs[n], prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(c.descs["map_entries"], prometheus.GaugeValue, float64(k.MapEntries))
}
