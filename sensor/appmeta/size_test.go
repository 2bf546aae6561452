package appmeta

import (
	"testing"
	"unsafe"
)

// TestFlowStateSmall guards the per-flow state's size: every open flow
// with payload holds one, so at a million open flows each 16 bytes is
// 16 MB of heap (the 80-byte allocation class, 112 before).
func TestFlowStateSmall(t *testing.T) {
	if n := unsafe.Sizeof(Flow{}); n > 80 {
		t.Fatalf("appmeta.Flow is %d bytes, want <= 80", n)
	}
}

// TestUnrecognisedFlowHoldsNothing: a flow whose payload is no known
// protocol gets no metadata and no buffer; a recognised one whose first
// message is incomplete buffers it in a buffer of about its size, not
// max_bytes.
func TestUnrecognisedFlowHoldsNothing(t *testing.T) {
	x, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := x.NewFlow(true)
	if x.Packet(f, true, 1000, []byte("\x8f\x12random bytes of no protocol"), 40000, 4444) {
		t.Fatal("done after one direction")
	}
	if f.meta != nil || f.dir[0].buf != nil || f.Meta() != nil {
		t.Fatalf("unrecognised flow holds meta %v, buffer cap %d", f.meta, cap(f.dir[0].buf))
	}

	g := x.NewFlow(true)
	req := []byte("GET /index.html HTTP/1.1\r\nHost: example.com\r\n") // headers not ended
	if x.Packet(g, true, 1000, req, 40001, 80) {
		t.Fatal("done on a partial request")
	}
	if g.meta == nil || len(g.dir[0].buf) != len(req) || cap(g.dir[0].buf) > minBuf {
		t.Fatalf("partial request: meta %v, buffer %d/%d", g.meta, len(g.dir[0].buf), cap(g.dir[0].buf))
	}
	x.Packet(g, true, 1000+uint32(len(req)), []byte("User-Agent: t\r\n\r\n"), 40001, 80)
	if m := g.Meta(); m == nil || m.HTTP == nil || m.HTTP.Host != "example.com" || m.HTTP.UserAgent != "t" {
		t.Fatalf("request not parsed: %+v", m)
	}
}
