package ipfix

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counter is a lock-free count exported as a Prometheus counter.
type counter struct{ atomic.Uint64 }

func (c *counter) Inc() { c.Add(1) }

// metrics are the exporter's counters.
type metrics struct {
	records         counter // data records encoded
	messages        counter // messages sent
	bytes           counter // message bytes sent
	sendErrors      counter // socket writes that failed
	droppedMessages counter // messages dropped: send queue full
	droppedRecords  counter // records refused: exporter not running
	skipped         counter // records of non-IP traffic
	skippedUpdates  counter // updates not exported (export_updates off)
	untracked       counter // updates exported without delta state
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		return m, nil
	}
	for _, c := range []struct {
		name, help string
		c          *counter
	}{
		{"tapir_ipfix_records_total", "Flow records encoded as IPFIX data records.", &m.records},
		{"tapir_ipfix_messages_total", "IPFIX messages sent.", &m.messages},
		{"tapir_ipfix_bytes_total", "Bytes of IPFIX messages sent.", &m.bytes},
		{"tapir_ipfix_send_errors_total", "IPFIX messages the socket refused.", &m.sendErrors},
		{"tapir_ipfix_dropped_messages_total", "IPFIX messages dropped because the send queue was full.", &m.droppedMessages},
		{"tapir_ipfix_dropped_records_total", "Flow records refused because the exporter was not running.", &m.droppedRecords},
		{"tapir_ipfix_skipped_records_total", "Flow records not exported: traffic that is not IP.", &m.skipped},
		{"tapir_ipfix_skipped_updates_total", "Flow updates not exported (export_updates off).", &m.skippedUpdates},
		{"tapir_ipfix_untracked_updates_total", "Flow updates exported with counts since the flow's start (delta state full).", &m.untracked},
	} {
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.c.Load()) })); err != nil {
			return nil, fmt.Errorf("register %s: %w", c.name, err)
		}
	}
	return m, nil
}
