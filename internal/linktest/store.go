package linktest

import (
	"errors"
	"slices"
	"sync"

	"github.com/tapir-sensor/tapir/flow"
)

// ErrInjected is the error Store.write returns while the store fails.
var ErrInjected = errors.New("linktest: injected store failure")

// Batch is one batch as the fake collector stored it (deep copies).
type Batch struct {
	SensorID string
	Epoch    uint64
	Seq      uint64
	Records  []flow.Record
	Blocks   []Block
}

// Block is one stored packet block.
type Block struct {
	// Encoded is the block as the sensor encoded it.
	Encoded []byte
}

// Store is the fake collector's in-memory store, with the store
// contract's (SensorID, Epoch, Seq) deduplication: a batch already
// applied is acknowledged again but not stored twice. Several fake
// collectors may share one Store. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	applied map[seqSpace]map[uint64]bool
	batches []Batch
	failing bool
	writes  int
}

// seqSpace is one sensor's sequence space: its id and epoch.
type seqSpace struct {
	sensor string
	epoch  uint64
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{applied: map[seqSpace]map[uint64]bool{}} }

// SetFailing makes writes fail with ErrInjected, or succeed again.
func (m *Store) SetFailing(f bool) {
	m.mu.Lock()
	m.failing = f
	m.mu.Unlock()
}

// write applies b unless its seq was already applied in its sequence
// space, and reports whether it did.
func (m *Store) write(b Batch) (bool, error) {
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
	m.batches = append(m.batches, b)
	return true, nil
}

// durableSeq returns the highest seq applied in a sequence space.
func (m *Store) durableSeq(sensorID string, epoch uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var hi uint64
	for s := range m.applied[seqSpace{sensorID, epoch}] {
		hi = max(hi, s)
	}
	return hi
}

// Batches returns a copy of the applied batches of sensorID, in write
// order.
func (m *Store) Batches(sensorID string) []Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Batch
	for _, b := range m.batches {
		if b.SensorID == sensorID {
			out = append(out, b)
		}
	}
	return slices.Clip(out)
}

// Writes returns how many writes were tried (failed ones included).
func (m *Store) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}
