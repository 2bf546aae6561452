// Package lifecycle runs the stop functions of started components in
// reverse start order, the one shutdown path of a binary that starts
// several components (a store, servers, publishers) one after another.
package lifecycle

import "errors"

// Stack holds stop functions; Stop runs them last-pushed first. The zero
// value is ready to use. A Stack is not safe for concurrent use.
type Stack struct {
	stops []func() error
}

// Push registers a stop function whose error Stop reports.
func (s *Stack) Push(stop func() error) {
	s.stops = append(s.stops, stop)
}

// PushFunc registers a stop function that returns no error.
func (s *Stack) PushFunc(stop func()) {
	s.Push(func() error { stop(); return nil })
}

// Stop runs every registered function once, last-pushed first, and joins
// their errors. The stack is empty afterwards.
func (s *Stack) Stop() error {
	var err error
	for i := len(s.stops) - 1; i >= 0; i-- {
		err = errors.Join(err, s.stops[i]())
	}
	s.stops = nil
	return err
}
