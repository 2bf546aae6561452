package client

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal), so
// progress is drawn only for people, never into logs or pipes.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Progress draws "received 12.3 MiB at 4.5 MiB/s" on one line, at most
// ten times a second. It is safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
	n     int64
	now   func() time.Time
}

// NewProgress returns a progress line drawn on w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, now: time.Now, start: time.Now()}
}

// Update records the bytes received so far and redraws if due.
func (p *Progress) Update(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	t := p.now()
	if t.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = t
	p.draw(t)
}

// Done draws the final line and ends it.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(p.now())
	fmt.Fprintln(p.w)
}

func (p *Progress) draw(t time.Time) {
	el := t.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.n) / el
	}
	fmt.Fprintf(p.w, "\rreceived %s at %s/s   ", HumanBytes(float64(p.n)), HumanBytes(rate))
}

// HumanBytes renders a byte count with a binary unit ("12.3 MiB").
func HumanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
