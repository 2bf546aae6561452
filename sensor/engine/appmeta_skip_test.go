package engine

import (
	"testing"

	"github.com/tapir-sensor/tapir/sensor/capture"
)

// TestAppMetaSkipsGivenUpDirection: once the metadata extractor gives up
// one direction of a flow (here a malformed DNS query, as trafgen's
// 65,536 flows to port 53 send), the worker keeps that in the flow's
// inline state and stops handing the direction's packets to the
// extractor, so a packet of such a flow does not read the extractor's
// per-flow state (a cache miss per packet at a busy tap). The other
// direction is still asked.
func TestAppMetaSkipsGivenUpDirection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SensorID = "test"
	e, err := New(cfg, Dependencies{Sources: []capture.Source{&sliceSource{}}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	if w.meta == nil {
		t.Fatal("metadata is off by default: the test needs it on")
	}
	f := udpFrame(7, 64)
	for i := range 3 {
		ci := capture.CaptureInfo{Timestamp: int64(1e15) + int64(i)*1000, CaptureLength: len(f), Length: len(f), LinkType: 1}
		w.next(f, ci)
	}
	st, _ := w.table.Packet(&w.pi)
	if st == nil || st.app == nil {
		t.Fatal("the flow has no metadata state")
	}
	if !st.app.DirDone(true) {
		t.Fatal("the extractor did not give up the malformed DNS query: the test needs it to")
	}
	if st.mflags&mDoneClient == 0 {
		t.Fatalf("flow state flags %#x: the given-up client direction is not kept beside the flow", st.mflags)
	}
	if st.mflags&(mDoneServer|mDone) != 0 {
		t.Fatalf("flow state flags %#x: the server direction was given up too", st.mflags)
	}
}
