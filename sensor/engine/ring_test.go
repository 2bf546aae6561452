package engine

import (
	"bytes"
	"io"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/capture"
)

// TestPageRing: packets come back as put, linked per flow; a page is
// reused once all its packets are released, never while one is waiting;
// a packet larger than a page gets its own.
func TestPageRing(t *testing.T) {
	var r pageRing
	pkt := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000+i%500) }
	var refs []pktRef
	for i := range 3000 { // about 4 pages
		refs = append(refs, r.put(int64(i), 2000, pkt(i)))
		if i > 0 {
			r.link(refs[i-1], refs[i])
		}
	}
	big := r.put(9, 3<<20, bytes.Repeat([]byte{7}, 3<<20))
	if len(r.pages) != 5 || r.page(big).seq != r.pages[4].seq {
		t.Fatalf("%d pages", len(r.pages))
	}
	for i, ref := range refs {
		ts, orig, data, next := r.packet(ref)
		if ts != int64(i) || orig != 2000 || !bytes.Equal(data, pkt(i)) {
			t.Fatalf("packet %d: %d %d %d bytes", i, ts, orig, len(data))
		}
		if want := pktRef(0); i+1 < len(refs) {
			want = refs[i+1]
			if next != want {
				t.Fatalf("packet %d: next %x, want %x", i, next, want)
			}
		}
	}
	before := r.held()
	r.release(refs[1]) // the first page still holds refs[0]
	if r.head != 0 || r.held() != before {
		t.Fatalf("page freed while a packet waits: head %d", r.head)
	}
	for _, ref := range refs {
		if ref != refs[1] {
			r.release(ref)
		}
	}
	if r.head != 4 || len(r.free) != 4 {
		t.Fatalf("after release: head %d, %d free pages", r.head, len(r.free))
	}
	if got, want := r.held(), int64(3<<20+pktHeader+4*ringPage); got != want {
		t.Fatalf("held %d, want %d", got, want)
	}
	r.put(10, 10, []byte("x")) // does not fit the big page: a reused page
	if len(r.free) != 3 {
		t.Fatalf("%d free pages after reuse", len(r.free))
	}
	r.shrink() // no page was left unused since the start
	if len(r.free) != 3 {
		t.Fatalf("%d free pages after the first shrink", len(r.free))
	}
	r.shrink() // three were left unused since the previous shrink
	if len(r.free) != 0 {
		t.Fatalf("%d free pages after the second shrink", len(r.free))
	}
	r.put(11, 10, bytes.Repeat([]byte{1}, ringPage)) // a new page
	r.trim(0)
	if r.held() != int64(3<<20+pktHeader)+ringPage+int64(ringPage+pktHeader) { // the big page, the one of "x", the new one
		t.Fatalf("held %d after trim", r.held())
	}
}

// nopSource is a capture source with no packets.
type nopSource struct{}

func (nopSource) ReadPacket() ([]byte, capture.CaptureInfo, error) {
	return nil, capture.CaptureInfo{}, io.EOF
}
func (nopSource) Interfaces() []capture.InterfaceInfo { return nil }
func (nopSource) Stats() (capture.Stats, error)       { return capture.Stats{}, nil }
func (nopSource) Close() error                        { return nil }

// TestMaxBufferedSharedByWorkers: blocks.max_buffered is one cap for the
// sensor, shared equally by the workers' rings (never below one block).
func TestMaxBufferedSharedByWorkers(t *testing.T) {
	for _, tc := range []struct {
		workers     int
		maxBuffered int64
		want        int64
	}{
		{1, 256 << 20, 256 << 20},
		{4, 256 << 20, 64 << 20},
		{4, 256 << 10, 128 << 10}, // a quarter would be below max_bytes
	} {
		cfg := DefaultConfig()
		cfg.Blocks.MaxBuffered = tc.maxBuffered
		srcs := make([]capture.Source, tc.workers)
		for i := range srcs {
			srcs[i] = nopSource{}
		}
		e, err := New(cfg, Dependencies{Sources: srcs, Sink: nopSink{}})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range e.workers {
			if w.maxBuffered != tc.want {
				t.Errorf("%d workers, max_buffered %d: a worker's share is %d, want %d", tc.workers, tc.maxBuffered, w.maxBuffered, tc.want)
			}
		}
	}
}

type nopSink struct{}

func (nopSink) AddRecord(*flow.Record) error { return nil }
func (nopSink) AddBlock([]byte) error        { return nil }
