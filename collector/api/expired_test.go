package api

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/collector/retention"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
)

// partialPerBlock is the number of packets per block in the partial
// expiry tests: the long SSH flows of ssh.pcap span several blocks.
const partialPerBlock = 8

// expiredHeader returns the parsed X-Tapir-Packets-Expired header of an
// answer (nil when absent).
func expiredHeader(t *testing.T, resp *http.Response) *client.Expired {
	t.Helper()
	h := resp.Header.Get("X-Tapir-Packets-Expired")
	if h == "" {
		return nil
	}
	e, err := client.ParseExpired(h)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// keptPackets is the oracle of a partial answer: tcpdump's decode of
// the packets tshark selects from the original capture for the flow's
// 5-tuple, without the first `removed` blocks' packets (blocks hold
// partialPerBlock packets of the flow, in capture order).
func keptPackets(t *testing.T, c *capture, cf *capFlow, removed int) []string {
	t.Helper()
	sel := filepath.Join(t.TempDir(), "sel.pcap")
	tsharkSelect(t, c.path, cf.rec.Tuple, sel)
	all := packetChunks(tcpdumpAbs(t, sel))
	if uint64(len(all)) != cf.rec.Source.StoredPackets+cf.rec.Destination.StoredPackets {
		t.Fatalf("tshark selects %d packets of %s, the store holds %d", len(all), cf.rec.Tuple,
			cf.rec.Source.StoredPackets+cf.rec.Destination.StoredPackets)
	}
	return all[removed*partialPerBlock:]
}

// tcpdumpAbs is tcpdumpText with absolute TCP sequence numbers, so that
// a capture missing a flow's first packets decodes its other packets as
// the whole capture does.
func tcpdumpAbs(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tcpdump"), "-r", path, "-nn", "-tt", "-xx", "-S",
		"--time-stamp-precision=micro").Output()
	if err != nil {
		t.Fatalf("tcpdump %s: %v", path, err)
	}
	return string(out)
}

// checkPartial fetches path and checks a partial answer: 200, the
// expired header with what retention removed of cf (its first `removed`
// blocks), the remaining packets equal to the oracle, the audit entry
// saying the same.
func checkPartial(t *testing.T, ts *testServer, c *capture, cf *capFlow, path string, removed int) {
	t.Helper()
	resp, body := ts.get(t, tokAlice, path)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
	}
	e := expiredHeader(t, resp)
	if e == nil {
		t.Fatalf("%s: partial answer without X-Tapir-Packets-Expired (headers %v)", path, resp.Header)
	}
	kept := time.Unix(0, cf.blocks[removed].Meta.First).UTC()
	if e.Flows != 1 || e.Blocks != int64(removed) || !e.From.Equal(cf.rec.Start) || !e.Until.Equal(kept) {
		t.Errorf("%s: X-Tapir-Packets-Expired %q; want flows=1 blocks=%d from=%s until=%s", path, e.Raw, removed,
			cf.rec.Start.Format(time.RFC3339Nano), kept.Format(time.RFC3339Nano))
	}
	want := keptPackets(t, c, cf, removed)
	got := packetChunks(tcpdumpAbs(t, writeTemp(t, "partial.pcap", body)))
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Logf("packet %d differs:\n--- got\n%s--- want\n%s", i, got[i], want[i])
				break
			}
		}
		t.Fatalf("%s: %d packets served, want the %d tshark selects after the first %d blocks", path, len(got), len(want), removed)
	}
	if resp.Trailer.Get("X-Tapir-Complete") != "true" {
		t.Errorf("%s: X-Tapir-Complete %q: every packet still stored was sent", path, resp.Trailer.Get("X-Tapir-Complete"))
	}
	entries := readAudit(t, ts.auditPath)
	a := entries[len(entries)-1]
	if a.Status != 200 || a.PacketsExpired == nil || a.PacketsExpired.Header() != e.Raw || a.Packets != int64(len(want)) {
		t.Errorf("%s: audit %+v (packets_expired %+v); want status 200, packets %d, packets_expired %q", path, a, a.PacketsExpired, len(want), e.Raw)
	}
}

// checkComplete fetches path and checks a complete answer has no
// expired header.
func checkComplete(t *testing.T, ts *testServer, path string) {
	t.Helper()
	resp, body := ts.get(t, tokAlice, path)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
	}
	if h := resp.Header.Get("X-Tapir-Packets-Expired"); h != "" {
		t.Fatalf("%s: complete flow answered X-Tapir-Packets-Expired %q", path, h)
	}
	entries := readAudit(t, ts.auditPath)
	if a := entries[len(entries)-1]; a.PacketsExpired != nil {
		t.Fatalf("%s: audit of a complete flow says packets expired: %+v", path, a.PacketsExpired)
	}
}

// TestPartialExpiryByAge: retention by age (the real retention runner
// over the Pebble store) removes the older blocks of a long SSH flow of
// ssh.pcap; its pcap still comes (200) with the rest of its packets, and
// says what is missing: X-Tapir-Packets-Expired, and the audit entry.
// A flow retention did not touch has no such header; a flow it removed
// wholly still answers 410.
func TestPartialExpiryByAge(t *testing.T) {
	path := testenv.Plain(t, testenv.Pcap(t, "zeek/ssh.pcap"))
	c := loadCapture(t, path, []string{"s1"}, partialPerBlock)
	st := openStore(t)
	writeBatches(t, st, c.batches(true))
	ts := startServer(t, st, c.last.Add(time.Minute), nil)

	// The flow whose blocks' last packets have the widest gap (at least
	// 2 s, so that the wall clock moving between MaxAge and the run does
	// not matter): the cutoff goes in the middle of it.
	var cf *capFlow
	var removed int
	var gap int64
	for _, f := range c.flows {
		for j := 1; j < len(f.blocks); j++ {
			if g := f.blocks[j].Meta.Last - f.blocks[j-1].Meta.Last; g > gap {
				cf, removed, gap = f, j, g
			}
		}
	}
	if gap < int64(2*time.Second) {
		t.Fatalf("no flow of %s has blocks ending 2 s apart (widest gap %v)", path, time.Duration(gap))
	}
	cutoff := time.Unix(0, cf.blocks[removed-1].Meta.Last+gap/2)
	r, err := retention.New(retention.Config{MaxAge: time.Since(cutoff), Interval: time.Minute}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wantRemoved int64
	var whole, complete *capFlow
	for _, f := range c.flows {
		n := 0
		for _, b := range f.blocks {
			if time.Unix(0, b.Meta.Last).Before(cutoff) {
				n++
			}
		}
		wantRemoved += int64(n)
		if n == len(f.blocks) && whole == nil {
			whole = f
		}
		if n == 0 && complete == nil && f.rec.Tuple.Proto == cf.rec.Tuple.Proto {
			complete = f
		}
	}
	if stats.Blocks != wantRemoved {
		t.Fatalf("retention removed %d blocks, %d end before the cutoff", stats.Blocks, wantRemoved)
	}
	t.Logf("flow %s: %d blocks, the first %d removed (cutoff %s)", cf.rec.Tuple, len(cf.blocks), removed, cutoff.UTC().Format(time.RFC3339Nano))

	checkPartial(t, ts, c, cf, "/api/v1/pcap?flow="+cf.rec.ID.String(), removed)
	checkPartial(t, ts, c, cf, "/api/v1/pcap?flow="+url.QueryEscape(cf.rec.CommunityID), removed)
	q := "port " + itoa(cf.rec.Tuple.SrcPort) + " and port " + itoa(cf.rec.Tuple.DstPort) +
		" and after " + cf.rec.Start.Add(-time.Second).Format(time.RFC3339) + " and before " + cf.rec.End.Add(time.Second).Format(time.RFC3339)
	checkPartial(t, ts, c, cf, "/api/v1/pcap?query="+url.QueryEscape(q), removed)
	if got := counterValue(t, ts.m.partialExpired); got != 3 {
		t.Errorf("tapir_api_packets_expired_partial_total = %v, want 3", got)
	}

	if complete == nil {
		t.Fatal("no flow left whole by retention")
	}
	checkComplete(t, ts, "/api/v1/pcap?flow="+url.QueryEscape(complete.rec.CommunityID))
	if whole == nil {
		t.Fatal("no flow removed wholly by retention")
	}
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+whole.rec.ID.String())
	if code, _ := errorCode(t, body); resp.StatusCode != 410 || code != "packets_expired" {
		t.Errorf("wholly expired flow: %d %s", resp.StatusCode, body)
	}
}

// TestPartialExpiryBySize: retention by size removes exactly the two
// oldest blocks of the only flow in the store; its pcap says so.
func TestPartialExpiryBySize(t *testing.T) {
	path := testenv.Plain(t, testenv.Pcap(t, "zeek/ssh.pcap"))
	c := loadCapture(t, path, []string{"s1"}, partialPerBlock)
	var cf *capFlow
	for _, f := range c.flows {
		if cf == nil || len(f.blocks) > len(cf.blocks) {
			cf = f
		}
	}
	if len(cf.blocks) < 4 {
		t.Fatalf("longest flow of %s has %d blocks", path, len(cf.blocks))
	}
	st := openStore(t)
	writeBatches(t, st, []*storage.Batch{{SensorID: "s1", Seq: 1, Records: []flow.Record{cf.rec}, Blocks: cf.blocks}})
	ts := startServer(t, st, c.last.Add(time.Minute), nil)
	checkComplete(t, ts, "/api/v1/pcap?flow="+cf.rec.ID.String())

	var total int64
	for _, b := range cf.blocks {
		total += int64(len(b.Encoded))
	}
	const removed = 2
	budget := total - int64(len(cf.blocks[0].Encoded)) - int64(len(cf.blocks[1].Encoded))
	r, err := retention.New(retention.Config{MaxBytes: budget, Interval: time.Minute}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats, err := r.RunOnce(context.Background()); err != nil || stats.Blocks != removed {
		t.Fatalf("retention to %d of %d bytes removed %d blocks (%v), want %d", budget, total, stats.Blocks, err, removed)
	}
	checkPartial(t, ts, c, cf, "/api/v1/pcap?flow="+url.QueryEscape(cf.rec.CommunityID), removed)
	// A window after the removed blocks lacks nothing.
	from := time.Unix(0, cf.blocks[removed].Meta.First).UTC().Format(time.RFC3339Nano)
	checkComplete(t, ts, "/api/v1/pcap?flow="+cf.rec.ID.String()+"&from="+url.QueryEscape(from))
	// A window that starts inside the removed part: the block count is
	// not known, the span is.
	mid := time.Unix(0, cf.blocks[0].Meta.Last).UTC()
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+cf.rec.ID.String()+"&from="+url.QueryEscape(mid.Format(time.RFC3339Nano)))
	e := expiredHeader(t, resp)
	if resp.StatusCode != 200 || e == nil || e.Blocks != 0 || strings.Contains(e.Raw, "blocks=") ||
		!e.From.Equal(mid) || !e.Until.Equal(time.Unix(0, cf.blocks[removed].Meta.First)) {
		t.Errorf("window from %s: status %d, expired %+v: %s", mid.Format(time.RFC3339Nano), resp.StatusCode, e, body)
	}
}
