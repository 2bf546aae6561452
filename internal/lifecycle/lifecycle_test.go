package lifecycle

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestStackStopsInReverseAndJoinsErrors(t *testing.T) {
	var s Stack
	var order []int
	errA, errC := errors.New("a"), errors.New("c")
	s.Push(func() error { order = append(order, 1); return errA })
	s.PushFunc(func() { order = append(order, 2) })
	s.Push(func() error { order = append(order, 3); return errC })
	err := s.Stop()
	if !slices.Equal(order, []int{3, 2, 1}) {
		t.Fatalf("stop order %v, want [3 2 1]", order)
	}
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("err %v, want both a and c", err)
	}
	if err := s.Stop(); err != nil || len(order) != 3 {
		t.Fatalf("second Stop ran functions again (order %v, err %v)", order, err)
	}
}

func TestSignalsDeliversHUPAndEndsOnTERM(t *testing.T) {
	ctx, hup, stop := Signals()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hup:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP not delivered on hup")
	}
	if ctx.Err() != nil {
		t.Fatal("SIGHUP ended the context")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not end the context")
	}
}
