package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// discardResponse is an http.ResponseWriter that keeps the status and
// the body's length only, so that what a request allocates is the
// server's.
type discardResponse struct {
	h      http.Header
	status int
	n      int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(code int)        { d.status = code }
func (d *discardResponse) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// TestPcapAnswerAllocations bounds the bytes one pcap retrieval by
// Community ID allocates in the server, through the real handler, and
// checks that the lent write buffers change nothing in the answers. A
// 256 KiB pcap write buffer allocated per answer (most of what a
// retrieval allocated, and a garbage collection every few dozen
// requests) fails the bound; the rest of a retrieval of these flows
// allocates a few tens of KiB.
func TestPcapAnswerAllocations(t *testing.T) {
	c := loadCapture(t, testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz")), []string{"s1"}, 64)
	c.flows = c.flows[:20]
	st := openStore(t)
	writeBatches(t, st, c.batches(true))
	ts := startServer(t, st, c.last.Add(time.Minute), nil)
	serve := func(id string) *discardResponse {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/pcap?flow="+url.QueryEscape(id), nil)
		req.Header.Set("Authorization", "Bearer "+tokAlice)
		w := &discardResponse{h: http.Header{}}
		ts.mux.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n <= 24 {
			t.Fatalf("flow %s: status %d, %d bytes", id, w.status, w.n)
		}
		return w
	}
	// The answers over the network are the ones the handler writes here.
	for _, f := range c.flows[:3] {
		_, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(f.rec.CommunityID))
		_, again := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(f.rec.CommunityID))
		if len(body) <= 24 || !bytes.Equal(body, again) {
			t.Fatalf("flow %s: %d and %d bytes: a reused buffer changed the answer", f.rec.CommunityID, len(body), len(again))
		}
	}
	for _, f := range c.flows {
		serve(f.rec.CommunityID) // warm up: buffers, caches
	}
	const rounds = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range rounds {
		for _, f := range c.flows {
			serve(f.rec.CommunityID)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / uint64(rounds*len(c.flows))
	t.Logf("%d bytes allocated per retrieval", per)
	if raceDetector {
		return // sync.Pool drops items on purpose under -race: no bound holds
	}
	if per > 128<<10 {
		t.Errorf("one retrieval allocates %d bytes, want at most %d (a write buffer per answer?)", per, 128<<10)
	}
}
