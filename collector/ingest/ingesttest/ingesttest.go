// Package ingesttest holds test helpers for the sensor-to-collector link:
// an in-memory storage.Writer, and (shared with the sensor's tests through
// internal/linktest) a throwaway PKI and flow records and packet blocks
// derived from a real capture. It is for tests only.
package ingesttest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/linktest"
	"github.com/tapir-sensor/tapir/storage"
)

// ErrInjected is the error MemStore returns while failing.
var ErrInjected = errors.New("ingesttest: injected store failure")

// MemStore is an in-memory storage.Writer with the store contract's
// (SensorID, Epoch, Seq) deduplication. It is safe for concurrent use.
type MemStore struct {
	mu      sync.Mutex
	applied map[seqSpace]map[uint64]bool
	// Batches are the applied batches in write order (deep copies).
	batches []storage.Batch
	failing bool
	writes  int
	delay   time.Duration
}

// seqSpace is one sensor's sequence space: its id and epoch.
type seqSpace struct {
	sensor string
	epoch  uint64
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{applied: map[seqSpace]map[uint64]bool{}} }

// SetFailing makes Write fail with ErrInjected or succeed again.
func (m *MemStore) SetFailing(f bool) {
	m.mu.Lock()
	m.failing = f
	m.mu.Unlock()
}

// SetDelay makes every Write take at least d (a slow store).
func (m *MemStore) SetDelay(d time.Duration) {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
}

// Write implements storage.Writer.
func (m *MemStore) Write(ctx context.Context, b *storage.Batch) (bool, error) {
	m.mu.Lock()
	d := m.delay
	m.mu.Unlock()
	time.Sleep(d)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.failing {
		return false, ErrInjected
	}
	sp := seqSpace{b.SensorID, b.Epoch}
	s := m.applied[sp]
	if s == nil {
		s = map[uint64]bool{}
		m.applied[sp] = s
	}
	if s[b.Seq] {
		return false, nil
	}
	s[b.Seq] = true
	c := storage.Batch{SensorID: b.SensorID, Epoch: b.Epoch, Seq: b.Seq, Records: slices.Clone(b.Records)}
	for _, bl := range b.Blocks {
		c.Blocks = append(c.Blocks, storage.Block{Meta: bl.Meta, Encoded: slices.Clone(bl.Encoded)})
	}
	m.batches = append(m.batches, c)
	return true, nil
}

// DurableSeq implements storage.Writer.
func (m *MemStore) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var hi uint64
	for s := range m.applied[seqSpace{sensorID, epoch}] {
		hi = max(hi, s)
	}
	return hi, nil
}

// Batches returns a copy of the applied batches of sensorID, in write order.
func (m *MemStore) Batches(sensorID string) []storage.Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Batch
	for _, b := range m.batches {
		if b.SensorID == sensorID {
			out = append(out, b)
		}
	}
	return out
}

// Writes returns how many Write calls were made (failed ones included).
func (m *MemStore) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// PKI is a throwaway CA directory with a server certificate for
// localhost/127.0.0.1 and sensor certificates (internal/linktest's, shared
// with the sensor's tests).
type PKI = linktest.PKI

// NewPKI creates a CA and a server certificate in a test temp dir, and
// sensor certificates for the ids given.
func NewPKI(t testing.TB, sensors ...string) *PKI { return linktest.NewPKI(t, sensors...) }

// Traffic is flow records and encoded packet blocks derived from a real
// capture.
type Traffic = linktest.Traffic

// CaptureTraffic reads the shared captures community-id-spec/tcp.pcap and
// udp.pcap and turns them into one record per flow and one block per
// (flow, up to perBlock packets), labelled with sensorID.
func CaptureTraffic(t testing.TB, sensorID string, perBlock int) *Traffic {
	return linktest.CaptureTraffic(t, sensorID, perBlock)
}
