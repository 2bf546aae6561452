package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(time.Hour)
	if held, ok := l.Allow(); !ok || held != 0 {
		t.Fatalf("first event: ok %v held %d", ok, held)
	}
	for range 5 {
		if _, ok := l.Allow(); ok {
			t.Fatal("an event within the interval was let through")
		}
	}
	l.last = l.last.Add(-2 * time.Hour) // the interval has passed
	if held, ok := l.Allow(); !ok || held != 5 {
		t.Fatalf("after the interval: ok %v held %d, want true 5", ok, held)
	}
}
