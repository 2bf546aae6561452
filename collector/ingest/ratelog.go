package ingest

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog logs at most one message per key per interval and reports how
// many were suppressed in between. It is safe for concurrent use.
type rateLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
	dropped  map[string]int
}

func newRateLog(l *slog.Logger, interval time.Duration) *rateLog {
	return &rateLog{log: l, interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}}
}

func (r *rateLog) warn(key, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.interval {
		r.dropped[key]++
		r.mu.Unlock()
		return
	}
	if len(r.last) > 10000 { // bound memory under a flood of keys
		clear(r.last)
		clear(r.dropped)
	}
	r.last[key] = now
	n := r.dropped[key]
	delete(r.dropped, key)
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.log.Warn(msg, args...)
}
