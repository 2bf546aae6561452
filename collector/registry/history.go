package registry

import (
	"time"
)

// History defaults: one sample per sensor every 10 s, 24 h kept.
const (
	DefaultHistoryInterval = 10 * time.Second
	DefaultHistoryLen      = 8640
)

// DropStages maps each drop stage of a sample to the sensor counter it
// is taken from: packets the kernel's capture ring dropped, packets the
// flow table's budget cut, blocks that could not be encoded (their
// packets lost), batches the spool dropped when full.
var DropStages = map[string]string{
	"ring":   "kernel_drops",
	"budget": "budget_cut_packets",
	"blocks": "block_errors",
	"spool":  "spool_dropped_batches",
}

// Sample is one point of a sensor's history: its rates and drops since
// the previous sample, from the counters it reported.
type Sample struct {
	// Time is the sensor's timestamp of the counters sampled.
	Time time.Time `json:"time"`
	// PacketsPerSec and BytesPerSec are the captured packet and wire
	// byte rates since the previous sample (0 for the first one).
	PacketsPerSec float64 `json:"packets_per_s"`
	BytesPerSec   float64 `json:"bytes_per_s"`
	// Drops are the drops by stage (DropStages) since the previous
	// sample.
	Drops map[string]uint64 `json:"drops"`
	// SpoolBytes is what the sensor's spool held.
	SpoolBytes uint64 `json:"spool_bytes"`
	// Connected and LastSeen are the collector's view when sampled.
	Connected bool      `json:"connected"`
	LastSeen  time.Time `json:"last_seen"`
}

// ring is a bounded history, oldest overwritten first.
type ring struct {
	buf  []Sample
	next int
	full bool
	// last is the counters of the latest sample, for the next deltas.
	last     map[string]uint64
	lastTime time.Time
}

// add appends s, overwriting the oldest sample when full.
func (r *ring) add(s Sample) {
	if !r.full && len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, s)
		return
	}
	r.full = true
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
}

// since returns the samples at or after t, oldest first.
func (r *ring) since(t time.Time) []Sample {
	out := make([]Sample, 0, len(r.buf))
	for i := range r.buf {
		s := r.buf[(r.next+i)%len(r.buf)]
		if !s.Time.Before(t) {
			out = append(out, copySample(s))
		}
	}
	return out
}

func copySample(s Sample) Sample {
	d := make(map[string]uint64, len(s.Drops))
	for k, v := range s.Drops {
		d[k] = v
	}
	s.Drops = d
	return s
}

// delta is how much a cumulative counter grew; a counter that went down
// was reset (the sensor restarted): all of its value is new.
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// sample builds the next sample of a sensor from its latest counters
// (taken at t) and the previous ones.
func (r *ring) sample(t time.Time, st *SensorStatus) Sample {
	c := st.Stats
	s := Sample{Time: t, Drops: make(map[string]uint64, len(DropStages)), SpoolBytes: c["spool_bytes"],
		Connected: st.Connected, LastSeen: st.LastSeen}
	if r.last != nil {
		if dt := t.Sub(r.lastTime).Seconds(); dt > 0 {
			s.PacketsPerSec = float64(delta(c["packets"], r.last["packets"])) / dt
			s.BytesPerSec = float64(delta(c["wire_bytes"], r.last["wire_bytes"])) / dt
		}
	}
	for stage, name := range DropStages {
		s.Drops[stage] = delta(c[name], r.last[name])
	}
	return s
}

// recordHistory samples the sensor's counters just reported at t when
// the history interval has passed since its previous sample. The caller
// holds r.mu.
func (r *Registry) recordHistory(id string, t time.Time, st *SensorStatus) {
	h := r.history[id]
	if h == nil {
		h = &ring{buf: make([]Sample, 0, r.historyLen)}
		r.history[id] = h
	}
	if h.last != nil && t.Sub(h.lastTime) < r.historyInterval {
		return
	}
	h.add(h.sample(t, st))
	h.last, h.lastTime = st.Stats, t
}

// History returns a sensor's samples whose time is at or after since,
// oldest first, and whether the sensor is known.
func (r *Registry) History(id string, since time.Time) ([]Sample, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sensors[id]; !ok {
		return nil, false
	}
	h := r.history[id]
	if h == nil {
		return []Sample{}, true
	}
	return h.since(since), true
}

// SetHistory changes the sampling interval and the samples kept per
// sensor (both positive; call before sensors connect).
func (r *Registry) SetHistory(interval time.Duration, keep int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.historyInterval, r.historyLen = interval, max(keep, 1)
	r.history = map[string]*ring{}
}
