package api

import (
	"net"
	"sync"
	"time"
)

// maxLimitedSources bounds the sources the denial limiter tracks; past
// it, idle sources are forgotten, and if none is idle every new source
// shares one bucket.
const maxLimitedSources = 4096

// denyLimiter is a token bucket per source IP for denied requests (401,
// 403): each one audited takes a token; a source out of tokens is
// answered 429 and not audited one by one, so that unauthenticated
// requests cannot fill the audit log's disk. It is safe for concurrent
// use.
type denyLimiter struct {
	rate  float64 // tokens per second
	burst float64
	mu    sync.Mutex
	srcs  map[string]*bucket
}

type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int64 // denials refused since the last audited one
}

func newDenyLimiter(rate float64, burst int) *denyLimiter {
	return &denyLimiter{rate: rate, burst: float64(burst), srcs: map[string]*bucket{}}
}

// sourceOf returns the IP of a remote address ("host:port").
func sourceOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// take spends a token of src's bucket. It reports whether the denial may
// be audited, and then how many denials of src were suppressed since the
// previous one.
func (l *denyLimiter) take(src string, now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketOf(src, now)
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

func (l *denyLimiter) bucketOf(src string, now time.Time) *bucket {
	if b, ok := l.srcs[src]; ok {
		return b
	}
	if len(l.srcs) >= maxLimitedSources {
		l.forgetIdle(now)
		if len(l.srcs) >= maxLimitedSources {
			src = "" // the shared bucket of sources past the bound
			if b, ok := l.srcs[src]; ok {
				return b
			}
		}
	}
	b := &bucket{tokens: l.burst, last: now}
	l.srcs[src] = b
	return b
}

// forgetIdle drops the buckets that have refilled and hold no
// suppressed count: forgetting them changes nothing.
func (l *denyLimiter) forgetIdle(now time.Time) {
	for k, b := range l.srcs {
		if b.suppressed == 0 && b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.srcs, k)
		}
	}
}
