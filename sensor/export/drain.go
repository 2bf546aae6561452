package export

import (
	"context"
	"time"
)

// WaitAcked blocks until the collector has acknowledged every batch handed
// to the exporter so far (the open batch is flushed first), or ctx ends.
// It reports whether everything was acknowledged. An offline sensor run
// calls it before Stop so that it exits only once its data is durable at
// the collector; whatever is still unacked at Stop stays in the spool and
// is sent by the next run.
func (e *Exporter) WaitAcked(ctx context.Context) bool {
	e.Flush()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		e.qmu.Lock()
		idle := len(e.items) == 0 && !e.spoolMode
		e.qmu.Unlock()
		if idle {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-e.failed:
			return false
		case <-t.C:
		}
	}
}

// FlushStats closes the open batch with the sensor's counters attached,
// whatever the stats interval: a run's final counters reach the
// collector's registry (call it after the engine stopped, before
// WaitAcked).
func (e *Exporter) FlushStats() {
	e.bmu.Lock()
	defer e.bmu.Unlock()
	e.lastStats = time.Time{}
	e.flushLocked()
}
