// Package lograte limits how often a repeated log line is written: one
// line per interval, with the count of the lines held back since the last
// one written, so an error that repeats at line rate is still visible
// without flooding the log.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets an event through at most once per interval and counts the
// ones held back. It is safe for concurrent use.
type Limiter struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
	held  int64
	fired bool
}

// New returns a Limiter that lets one event through per every.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow reports whether to let this event through, and how many were held
// back since the last one that was.
func (r *Limiter) Allow() (held int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.fired && now.Sub(r.last) < r.every {
		r.held++
		return 0, false
	}
	n := r.held
	r.last, r.held, r.fired = now, 0, true
	return n, true
}
