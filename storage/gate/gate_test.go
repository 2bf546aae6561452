package gate

import (
	"errors"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/storage"
)

// TestCloseWaitsAndShuts: Close waits for the operation running, releases
// once, and every later operation is refused with storage.ErrClosed.
func TestCloseWaitsAndShuts(t *testing.T) {
	var g Gate
	if err := g.Enter(); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	closed := make(chan error)
	go func() {
		closed <- g.Close(func() error { close(released); return errors.New("release failed") })
	}()
	select {
	case <-released:
		t.Fatal("released while an operation runs")
	case <-time.After(50 * time.Millisecond):
	}
	g.Leave()
	if err := <-closed; err == nil || err.Error() != "release failed" {
		t.Fatalf("close: %v, want release's error", err)
	}
	if err := g.Enter(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("enter after close: %v, want ErrClosed", err)
	}
	if err := g.Close(func() error { t.Fatal("released twice"); return nil }); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
