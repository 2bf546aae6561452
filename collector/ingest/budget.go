package ingest

import (
	"context"
	"sync"
)

// budget is the collector's allowance of in-flight batch bytes: bytes of
// batches received and not yet stored and acked, across every stream. A
// stream that cannot take its batch's bytes waits before it reads the
// next message, so HTTP/2 flow control holds its sensor back (the sensor
// keeps the batches in memory or spools them) instead of the collector
// buffering without bound. It is safe for concurrent use.
type budget struct {
	max int64

	mu      sync.Mutex
	used    int64
	changed chan struct{} // closed and replaced on every release
}

func newBudget(max int64) *budget {
	return &budget{max: max, changed: make(chan struct{})}
}

// acquire takes n bytes, waiting while the budget is spent. A request is
// granted when it fits or when nothing is in flight, so a batch larger
// than the whole budget still passes alone. It reports whether it had to
// wait; on a done ctx it returns ctx's error and holds nothing.
func (b *budget) acquire(ctx context.Context, n int64) (waited bool, err error) {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return waited, nil
		}
		ch := b.changed
		b.mu.Unlock()
		waited = true
		select {
		case <-ch:
		case <-ctx.Done():
			return waited, ctx.Err()
		}
	}
}

// release returns n bytes taken by acquire.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// inUse returns the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
