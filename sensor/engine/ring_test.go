package engine

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/tapir-sensor/tapir/block"
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

// sliceSource replays frames from memory.
type sliceSource struct {
	frames [][]byte
	ts     []int64
	i      int
}

func (s *sliceSource) ReadPacket() ([]byte, capture.CaptureInfo, error) {
	if s.i == len(s.frames) {
		return nil, capture.CaptureInfo{}, io.EOF
	}
	f := s.frames[s.i]
	ci := capture.CaptureInfo{Timestamp: s.ts[s.i], CaptureLength: len(f), Length: len(f), LinkType: 1}
	s.i++
	return f, ci, nil
}
func (*sliceSource) Interfaces() []capture.InterfaceInfo { return nil }
func (*sliceSource) Stats() (capture.Stats, error)       { return capture.Stats{}, nil }
func (*sliceSource) Close() error                        { return nil }

// udpFrame builds an Ethernet/IPv4/UDP frame of flow i with n payload bytes.
func udpFrame(i, n int) []byte {
	f := make([]byte, 42+n)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+n))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{10, 1, byte(i >> 8), byte(i)})
	copy(ip[16:], []byte{10, 2, 0, 1})
	binary.BigEndian.PutUint16(ip[20:], uint16(1024+i%50000))
	binary.BigEndian.PutUint16(ip[22:], 53)
	binary.BigEndian.PutUint16(ip[24:], uint16(8+n))
	for j := range n {
		f[42+j] = byte(i*7 + j*13)
	}
	return f
}

// countBlocksSink counts blocks and the packets in them.
// runToEnd starts the engine, waits until its sources are drained and
// stops it, failing the test on an error.
func runToEnd(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
}

type countBlocksSink struct{ blocks, packets int }

func (*countBlocksSink) AddRecord(*flow.Record) error { return nil }
func (s *countBlocksSink) AddBlock(b []byte) error {
	m, _, err := block.ParseMeta(b)
	if err != nil {
		return err
	}
	s.blocks++
	s.packets += int(m.Packets)
	return nil
}

// TestRingAtCapReusesPages: at blocks.max_buffered the worker closes
// blocks early but keeps the ring's emptied pages mapped and reuses them,
// instead of returning them to the kernel and mapping fresh ones (a page
// fault per 4 KiB of packets). Many flows open at once, 40 MiB of packets
// through an 8 MiB cap: the ring maps about the cap's worth of pages, and
// every packet still leaves in a block.
func TestRingAtCapReusesPages(t *testing.T) {
	const flows, rounds, size = 8000, 5, 1000
	src := &sliceSource{}
	for r := range rounds {
		for i := range flows {
			src.frames = append(src.frames, udpFrame(i, size))
			src.ts = append(src.ts, int64(1e15)+int64(r*flows+i)*1000) // 5 packets per flow within 40 ms
		}
	}
	cfg := DefaultConfig()
	cfg.SensorID = "test"
	cfg.Blocks.MaxBuffered = 8 << 20
	sink := &countBlocksSink{}
	e, err := New(cfg, Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	runToEnd(t, e)
	w := e.workers[0]
	if sink.packets != flows*rounds {
		t.Fatalf("%d packets in %d blocks, want %d", sink.packets, sink.blocks, flows*rounds)
	}
	st := e.Stats()
	if st.BlocksClosedEarly == 0 {
		t.Fatal("no block closed early: the test does not reach the cap")
	}
	capPages := int(cfg.Blocks.MaxBuffered / ringPage)
	t.Logf("%d blocks (%d closed early); the ring mapped %d pages for a cap of %d", sink.blocks, st.BlocksClosedEarly, w.ring.mapped, capPages)
	if w.ring.mapped > capPages+2 {
		t.Fatalf("ring mapped %d pages over the run for a cap of %d pages: emptied pages were unmapped and mapped again", w.ring.mapped, capPages)
	}
}

// TestBuildersReusedAcrossAges: blocks closed by age leave their builders
// in a burst; the same flows take them back with their next packets, so a
// worker with a few hundred flows allocates about one builder per flow,
// not one per block (with a pool of 64 most blocks started from an empty
// buffer and grew it again).
func TestBuildersReusedAcrossAges(t *testing.T) {
	const flows, perFlow = 600, 50
	src := &sliceSource{}
	for r := range perFlow {
		for i := range flows {
			src.frames = append(src.frames, udpFrame(i, 200))
			src.ts = append(src.ts, int64(1e15)+int64(r)*int64(200e6)+int64(i)*1000) // 10 s of packet time: 5 block ages
		}
	}
	cfg := DefaultConfig()
	cfg.SensorID = "test"
	sink := &countBlocksSink{}
	e, err := New(cfg, Dependencies{Sources: []capture.Source{src}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	runToEnd(t, e)
	w := e.workers[0]
	if sink.packets != flows*perFlow {
		t.Fatalf("%d packets in %d blocks, want %d", sink.packets, sink.blocks, flows*perFlow)
	}
	t.Logf("%d blocks, %d builders allocated", sink.blocks, w.newBuilders)
	if sink.blocks < 4*flows {
		t.Fatalf("%d blocks: the test does not close blocks by age", sink.blocks)
	}
	if w.newBuilders > flows+flows/10 {
		t.Fatalf("%d builders allocated for %d flows and %d blocks: closed blocks' builders were not reused", w.newBuilders, flows, sink.blocks)
	}
}
