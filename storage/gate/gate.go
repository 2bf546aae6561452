// Package gate admits a storage backend's operations until the store is
// closed: every operation enters the gate (many at once), and Close waits
// for those running, then shuts the gate for good, so that no operation
// ever uses a released client or database.
package gate

import (
	"sync"

	"github.com/tapir-sensor/tapir/storage"
)

// Gate is open until Close. Its zero value is an open gate. Safe for
// concurrent use.
type Gate struct {
	mu     sync.RWMutex // read-locked by each operation, write-locked by Close
	closed bool
}

// Enter admits one operation, which must Leave when done, or returns
// storage.ErrClosed once the gate is shut.
func (g *Gate) Enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

// Leave ends an operation that Enter admitted.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the operations running, then, the first time only,
// shuts the gate and returns release's error (release frees what the
// operations used). Later calls return nil.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return release()
}
