package flowtable

// ring is a growable FIFO queue (power-of-two circular buffer). It
// allocates only when it grows past its largest size so far.
type ring[E any] struct {
	buf  []E
	head int
	n    int
}

func (r *ring[E]) push(e E) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = e
	r.n++
}

func (r *ring[E]) grow() {
	nb := make([]E, max(64, 2*len(r.buf)))
	for i := 0; i < r.n; i++ {
		nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = nb, 0
}

// peek returns the oldest item; the queue must not be empty.
func (r *ring[E]) peek() E { return r.buf[r.head] }

// pop drops the oldest item; the queue must not be empty.
func (r *ring[E]) pop() {
	var zero E
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
}

// filter keeps, in order, the items for which keep is true.
func (r *ring[E]) filter(keep func(*E) bool) {
	m := len(r.buf) - 1
	w := 0
	for i := 0; i < r.n; i++ {
		e := r.buf[(r.head+i)&m]
		if keep(&e) {
			r.buf[(r.head+w)&m] = e
			w++
		}
	}
	var zero E
	for i := w; i < r.n; i++ {
		r.buf[(r.head+i)&m] = zero
	}
	r.n = w
}

func (r *ring[E]) reset() {
	clear(r.buf)
	r.head, r.n = 0, 0
}
