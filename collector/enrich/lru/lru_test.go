package lru

import "testing"

func TestEvictsOldestWrite(t *testing.T) {
	m := New[int, string](2)
	m.Put(1, "a")
	m.Put(2, "b")
	m.Get(1) // reads do not reorder
	m.Put(3, "c")
	if _, ok := m.Get(1); ok {
		t.Fatal("1 not evicted")
	}
	m.Ptr(2) // touch
	m.Put(4, "d")
	if _, ok := m.Get(3); ok {
		t.Fatal("3 not evicted")
	}
	var order []int
	m.Oldest(func(k int, _ string) { order = append(order, k) })
	if len(order) != 2 || order[0] != 2 || order[1] != 4 || m.Evictions != 2 {
		t.Fatalf("order %v evictions %d", order, m.Evictions)
	}
}
