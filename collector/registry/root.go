// Package registry keeps the collector's view of its sensor fleet: who
// each sensor says it is, whether it is connected, what it has sent and
// the counters it last reported. The ingest server feeds it; the HTTP API
// and Prometheus read it.
//
// The registry is in-memory and per collector process: a sensor that never
// connected to this collector is unknown to it. Durable state (what was
// stored) lives in the store.
package registry

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Interface is one capture interface a sensor announced.
type Interface struct {
	Name     string `json:"name"`
	LinkType uint32 `json:"link_type"` // pcap LINKTYPE_*
	Snaplen  uint32 `json:"snaplen"`
}

// Info is what a sensor says about itself when it connects (its Hello).
type Info struct {
	ID string `json:"id"`
	// Epoch is the sequence space of the latest stream (drawn when the
	// sensor's spool was created; 0 for a legacy sensor).
	Epoch        uint64      `json:"epoch"`
	Hostname     string      `json:"hostname"`
	Version      string      `json:"version"`
	Interfaces   []Interface `json:"interfaces"`
	Capabilities []string    `json:"capabilities"`
}

// SensorStatus is a snapshot of one sensor as seen by this collector.
// It is a copy: callers may keep and modify it.
type SensorStatus struct {
	Info
	// Connected is true while at least one stream from the sensor is open.
	Connected bool `json:"connected"`
	// Streams is the number of open streams (normally 0 or 1; briefly 2
	// while a reconnecting sensor's old stream has not timed out yet).
	Streams int `json:"streams"`
	// RemoteAddr is the address of the latest stream.
	RemoteAddr string `json:"remote_addr"`
	// ConnectedSince is when the latest stream opened (zero if never).
	ConnectedSince time.Time `json:"connected_since"`
	// LastSeen is when the sensor last sent anything.
	LastSeen time.Time `json:"last_seen"`
	// DurableSeq is the highest batch sequence number known durable for
	// the sensor in Epoch (acked by this collector or reported by the
	// store).
	DurableSeq uint64 `json:"durable_seq"`
	// Stats are the sensor's latest cumulative counters (kernel drops,
	// queue drops, budget cuts, spool bytes, ...), as it reported them.
	Stats map[string]uint64 `json:"stats"`
	// StatsTime is the sensor's timestamp of Stats.
	StatsTime time.Time `json:"stats_time"`
	// Received since this collector started.
	Batches  uint64 `json:"batches"`
	Flows    uint64 `json:"flows"`
	Blocks   uint64 `json:"blocks"`
	Bytes    uint64 `json:"bytes"`    // encoded block bytes
	Rejected uint64 `json:"rejected"` // batches refused as malformed
	// Duplicates counts batches the store had already applied (resent
	// after a reconnect): acked but not stored again.
	Duplicates uint64 `json:"duplicates"`
	// StoreErrors counts batches the store failed to write.
	StoreErrors uint64 `json:"store_errors"`
	// LastError is the latest error on the sensor's streams ("" if none).
	LastError string `json:"last_error,omitempty"`
}

// Registry is the set of sensors. It is safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	sensors map[string]*SensorStatus
	now     func() time.Time
	// history holds each sensor's samples (history.go).
	history         map[string]*ring
	historyInterval time.Duration
	historyLen      int
}

// New returns an empty registry. If reg is not nil, the registry's
// per-sensor metrics (tapir_collector_sensor_*) are registered on it.
func New(reg prometheus.Registerer) (*Registry, error) {
	r := &Registry{sensors: make(map[string]*SensorStatus), now: time.Now,
		history: map[string]*ring{}, historyInterval: DefaultHistoryInterval, historyLen: DefaultHistoryLen}
	if reg != nil {
		if err := reg.Register(&collector{r: r}); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Sensors returns a snapshot of every known sensor, sorted by id.
func (r *Registry) Sensors() []SensorStatus {
	r.mu.Lock()
	out := make([]SensorStatus, 0, len(r.sensors))
	for _, s := range r.sensors {
		out = append(out, copyStatus(s))
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b SensorStatus) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Sensor returns one sensor's snapshot and whether it is known.
func (r *Registry) Sensor(id string) (SensorStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sensors[id]
	if !ok {
		return SensorStatus{}, false
	}
	return copyStatus(s), true
}

func copyStatus(s *SensorStatus) SensorStatus {
	c := *s
	c.Interfaces = slices.Clone(s.Interfaces)
	c.Capabilities = slices.Clone(s.Capabilities)
	c.Stats = maps.Clone(s.Stats)
	return c
}

// Connect records a new stream from a sensor that introduced itself with
// info, from remoteAddr, whose durable sequence number in the store is
// durableSeq. It returns the stream's Session; the caller must call
// Session.Close when the stream ends.
func (r *Registry) Connect(info Info, remoteAddr string, durableSeq uint64) *Session {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sensors[info.ID]
	if !ok {
		s = &SensorStatus{}
		r.sensors[info.ID] = s
	}
	if info.Epoch != s.Epoch {
		s.DurableSeq = 0 // another sequence space
	}
	s.Info = Info{
		ID:           info.ID,
		Epoch:        info.Epoch,
		Hostname:     info.Hostname,
		Version:      info.Version,
		Interfaces:   slices.Clone(info.Interfaces),
		Capabilities: slices.Clone(info.Capabilities),
	}
	s.Streams++
	s.Connected = true
	s.RemoteAddr = remoteAddr
	s.ConnectedSince = now
	s.LastSeen = now
	s.DurableSeq = max(s.DurableSeq, durableSeq)
	return &Session{r: r, s: s, epoch: info.Epoch}
}

// Session is one open stream of one sensor. Its methods are safe for
// concurrent use (they lock the registry).
type Session struct {
	r      *Registry
	s      *SensorStatus
	epoch  uint64
	closed bool
}

// Batch records a batch received and stored (applied) or skipped as an
// already stored duplicate (applied == false), acked up to durableSeq.
func (x *Session) Batch(flows, blocks, bytes int, applied bool, durableSeq uint64) {
	now := x.r.now()
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	s := x.s
	s.LastSeen = now
	s.Batches++
	if applied {
		s.Flows += uint64(flows)
		s.Blocks += uint64(blocks)
		s.Bytes += uint64(bytes)
	} else {
		s.Duplicates++
	}
	if x.epoch == s.Epoch {
		s.DurableSeq = max(s.DurableSeq, durableSeq)
	}
}

// Stats records the sensor's latest counters (taken at sensorTime). The
// map is copied. Older reports than the one kept are ignored.
func (x *Session) Stats(sensorTime time.Time, counters map[string]uint64) {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	if sensorTime.Before(x.s.StatsTime) {
		return
	}
	x.s.StatsTime = sensorTime
	x.s.Stats = maps.Clone(counters)
	x.r.recordHistory(x.s.ID, sensorTime, x.s)
}

// Rejected records a batch refused as malformed, with the reason.
func (x *Session) Rejected(err error) {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	x.s.Rejected++
	x.s.LastSeen = x.r.now()
	if err != nil {
		x.s.LastError = err.Error()
	}
}

// StoreError records a batch the store could not write.
func (x *Session) StoreError(err error) {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	x.s.StoreErrors++
	if err != nil {
		x.s.LastError = err.Error()
	}
}

// Close marks the stream closed. It is idempotent.
func (x *Session) Close() {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	if x.closed {
		return
	}
	x.closed = true
	x.s.Streams--
	x.s.Connected = x.s.Streams > 0
	x.s.LastSeen = x.r.now()
}
