package flowtable

import "time"

// StepThreshold is how far packet time must fall behind the latest packet
// time seen to count as a clock step (captures merged end to end, an NTP
// step). Smaller backward moves are reordering: they neither move the
// clock nor count.
const StepThreshold = int64(time.Second)

// Clock is the table's time for timeouts and ages. It never runs
// backwards: it advances by how far packet time moves past the latest
// packet time seen, and when packet time steps back by StepThreshold or
// more it rebases on the new packet time (counted) instead of waiting
// for packet time to catch up, so expiry never stalls. A jump back up to
// the time seen before a step advances it only by what lies past that
// time, so a stray early timestamp does not make the clock leap. While packet time
// only moves forward Clock equals it. The zero Clock starts at the first
// time it observes. Not safe for concurrent use.
type Clock struct {
	hi    int64 // latest packet time since the last step
	top   int64 // latest packet time ever
	now   int64 // monotonic clock
	steps uint64
	from  int64 // the first step: from hi ...
	to    int64 // ... to this packet time
	init  bool
}

// Observe takes a packet (or wall clock) time in Unix ns and returns the
// clock.
func (c *Clock) Observe(ts int64) int64 {
	switch {
	case !c.init:
		c.hi, c.top, c.now, c.init = ts, ts, ts, true
	case ts > c.hi && c.hi < c.top && ts-c.hi >= StepThreshold && ts >= c.top-StepThreshold:
		// Back from a step to the time seen before it (one bogus
		// timestamp, say 0, amid real ones): only what lies past the
		// latest time ever seen is time passing.
		c.now += max(0, ts-c.top)
		c.hi, c.top = ts, max(c.top, ts)
	case ts > c.hi:
		c.now += ts - c.hi
		c.hi, c.top = ts, max(c.top, ts)
	case ts <= c.hi-StepThreshold:
		if c.steps == 0 {
			c.from, c.to = c.hi, ts
		}
		c.steps++
		c.hi = ts
	}
	return c.now
}

// Tick moves the clock to a wall clock time, forward only: an idle
// interface's timers run on the wall clock, which never counts as a step.
func (c *Clock) Tick(ts int64) int64 {
	if !c.init || ts > c.hi {
		return c.Observe(ts)
	}
	return c.now
}

// Now returns the clock (0 before the first Observe).
func (c *Clock) Now() int64 { return c.now }

// Steps returns how many times packet time stepped back, and the first
// step's times (Unix ns, zero when none).
func (c *Clock) Steps() (n uint64, firstFrom, firstTo int64) { return c.steps, c.from, c.to }
