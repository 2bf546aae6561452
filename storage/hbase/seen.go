package hbase

import "sync"

// seenCacheRows bounds the rows a Store remembers for its check-and-put
// guesses (a record row is ~200 bytes: ~15 MiB at most).
const seenCacheRows = 65536

// refPutCacheRows bounds the ref rows whose acknowledged cells a Store
// remembers (two per flow; ~100 bytes each with the map's overhead).
const refPutCacheRows = 1 << 18

// seenCache maps row keys to the value last read or written there. It is
// only a guess: a check-and-put against it fails when it is stale, and
// the caller reads the row then. When full it is emptied (a cheap
// eviction: the next merges of those rows read them once more).
type seenCache struct {
	mu   sync.Mutex
	max  int
	rows map[string][]byte
}

func newSeenCache(max int) *seenCache {
	return &seenCache{max: max, rows: make(map[string][]byte)}
}

func (c *seenCache) get(key []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.rows[string(key)]
	return v, ok
}

func (c *seenCache) set(key, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rows) >= c.max {
		clear(c.rows)
	}
	c.rows[string(key)] = value
}
