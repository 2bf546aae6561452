package lifecycle

import (
	"errors"
	"slices"
	"testing"
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
