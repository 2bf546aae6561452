// Package lru is a small bounded map that evicts the least recently
// written entry. Not safe for concurrent use: callers lock.
package lru

// Map is a bounded map ordered by write recency. Get does not reorder (so
// readers can share a read lock); Put and Touch move an entry to the front.
type Map[K comparable, V any] struct {
	max        int
	m          map[K]*node[K, V]
	head, tail *node[K, V] // head: most recent
	// Evictions counts entries dropped to stay within the bound.
	Evictions uint64
}

type node[K comparable, V any] struct {
	k          K
	v          V
	prev, next *node[K, V]
}

// New returns a map holding at most n entries (at least 1).
func New[K comparable, V any](n int) *Map[K, V] {
	return &Map[K, V]{max: max(n, 1), m: make(map[K]*node[K, V])}
}

// Len is the number of entries.
func (l *Map[K, V]) Len() int { return len(l.m) }

// Get returns the value of k without reordering.
func (l *Map[K, V]) Get(k K) (V, bool) {
	n, ok := l.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	return n.v, true
}

// Ptr returns a pointer to k's value (valid until k is evicted) and moves
// it to the front, or nil.
func (l *Map[K, V]) Ptr(k K) *V {
	n, ok := l.m[k]
	if !ok {
		return nil
	}
	l.front(n)
	return &n.v
}

// Put sets k to v and moves it to the front, evicting the oldest entry
// when full.
func (l *Map[K, V]) Put(k K, v V) {
	if n, ok := l.m[k]; ok {
		n.v = v
		l.front(n)
		return
	}
	if len(l.m) >= l.max {
		old := l.tail
		l.unlink(old)
		delete(l.m, old.k)
		l.Evictions++
	}
	n := &node[K, V]{k: k, v: v}
	l.m[k] = n
	l.pushFront(n)
}

// Oldest calls f from the oldest entry to the newest.
func (l *Map[K, V]) Oldest(f func(K, V)) {
	for n := l.tail; n != nil; n = n.prev {
		f(n.k, n.v)
	}
}

func (l *Map[K, V]) front(n *node[K, V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *Map[K, V]) unlink(n *node[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (l *Map[K, V]) pushFront(n *node[K, V]) {
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}
