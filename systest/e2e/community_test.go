package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// capture is one shared capture streamed by its own sensor.
type capture struct {
	rel, plain, sensor string
	frames             []frame
	damaged            bool // tshark stops at damage in the file
	exit               int
	sensorLog          string
}

// longTimeouts end flows only at the end of the file.
var longTimeouts = []string{"--idle-timeout", "87600h", "--active-timeout", "87600h"}

// TestPcapByCommunityIDEveryCapture streams every shared capture through
// tapir-sensor to one collector, lists each capture's flows with `tapir
// flows`, fetches every flow's pcap by Community ID with `tapir pcap
// --flow` and compares it, frame by frame (time, wire length, captured
// length, bytes, in order), with the frames tshark assigns to that flow's
// 5-tuple in the original captures.
func TestPcapByCommunityIDEveryCapture(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	work := t.TempDir()

	var caps []*capture
	for _, path := range testenv.Captures(t) {
		plain := path
		if strings.HasSuffix(path, ".gz") {
			plain = testenv.Plain(t, path)
		}
		caps = append(caps, &capture{rel: testenv.Rel(t, path), plain: plain, sensor: fmt.Sprintf("cap%03d", len(caps))})
	}
	ids := make([]string, len(caps))
	for i, c := range caps {
		ids[i] = c.sensor
	}
	p := newPKI(t, filepath.Join(work, "certs"), ids...)
	col := newCollector(t, filepath.Join(work, "collector"), p)

	// Stream every capture (two sensors at a time) while tshark and
	// tcpdump read the originals.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		parallel(len(caps), 2, func(i int) {
			c := caps[i]
			c.frames, _ = readFramesNoFatal(t, c.plain, &c.damaged)
		})
	}()
	parallel(len(caps), 4, func(i int) {
		c := caps[i]
		args := append([]string{"-r", c.plain}, col.sensorArgs(c.sensor, filepath.Join(work, "spool", c.sensor))...)
		args = append(args, longTimeouts...)
		args = append(args, "--drain-timeout", "10s")
		sp := startProc(t, append([]string{bin.sensor}, args...)...)
		c.exit, _ = sp.Wait(120 * time.Second)
		c.sensorLog = sp.Log.String()
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	var unreadable []string
	caps = slices.DeleteFunc(caps, func(c *capture) bool {
		if c.damaged && len(c.frames) == 0 {
			unreadable = append(unreadable, c.rel)
			return true
		}
		return false
	})
	t.Logf("%d captures compared; %d that tshark cannot read are not (no oracle): %s",
		len(caps), len(unreadable), strings.Join(unreadable, ", "))
	if len(caps) < 50 {
		t.Fatalf("only %d readable captures", len(caps))
	}

	// expected: Community ID -> frames from every capture, in capture
	// order; listed: the Community IDs tapir flows shows per capture.
	expected := map[string][]frame{}
	sources := map[string][]string{}
	var pseudo, records, tunnelFlows int
	for _, c := range caps {
		if c.exit != 0 && !c.damaged {
			t.Errorf("%s: tapir-sensor exited %d on a file tshark reads whole:\n%s", c.rel, c.exit, c.sensorLog)
			continue
		}
		if strings.Contains(c.sensorLog, "has not acknowledged everything") {
			t.Errorf("%s: the collector did not acknowledge everything; its flows are not compared. Sensor and collector said:\n%s\n%s",
				c.rel, e2etest.LastLines(c.sensorLog, 4), grepLines(col.proc.Log.String(), "sensor="+c.sensor+" ", 2))
			continue
		}
		want := map[string]int{}
		for i := range c.frames {
			f := &c.frames[i]
			if f.cid == "" {
				continue
			}
			want[f.cid]++
			expected[f.cid] = append(expected[f.cid], *f)
		}
		for cid := range want {
			if n := len(sources[cid]); n == 0 || sources[cid][n-1] != c.rel {
				sources[cid] = append(sources[cid], c.rel)
			}
		}
		got := map[string]bool{}
		{
			seen := map[string]bool{}
			for _, w := range windows(c.frames) {
				for _, r := range col.flows(t, w) {
					if r.Tapir.SensorID != c.sensor {
						continue
					}
					key := r.Tapir.FlowID + "/" + strconv.Itoa(int(r.Tapir.Segment))
					if seen[key] {
						continue
					}
					seen[key] = true
					records++
					if r.Network.CommunityID == "" {
						pseudo++ // link-layer pseudo flow: no Community ID
						continue
					}
					if r.Tapir.TunnelFlow && want[r.Network.CommunityID] == 0 {
						// A tunnel's own record on its outer 5-tuple:
						// tshark's frames are keyed on the inner
						// connection, so it has no oracle here;
						// systest/tunnels checks it against tshark's
						// outer fields. (A tunnel that also carries
						// frames nobody takes apart, keyed on it by
						// both, is compared as any flow.)
						tunnelFlows++
						continue
					}
					got[r.Network.CommunityID] = true
				}
			}
		}
		for cid, n := range want {
			if !got[cid] {
				t.Errorf("%s: tshark sees flow %s (%s, %d frames); tapir flows does not list it", c.rel, cid, firstTuple(c.frames, cid), n)
			}
		}
		for cid := range got {
			if want[cid] == 0 {
				t.Errorf("%s: tapir flows lists %s, which tshark's frames do not form", c.rel, cid)
			}
		}
	}

	// Fetch every flow's pcap (three at a time).
	cids := make([]string, 0, len(expected))
	for cid := range expected {
		cids = append(cids, cid)
	}
	sort.Strings(cids)
	files := make([]string, len(cids))
	errs := make([]error, len(cids))
	pdir := filepath.Join(work, "pcaps")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	parallel(len(cids), 3, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		files[i] = filepath.Join(pdir, fmt.Sprintf("%04d.pcap", i))
		_, errs[i] = col.pcap(ctx, cids[i], files[i])
		if errs[i] != nil && strings.Contains(errs[i].Error(), "link types") {
			files[i] = filepath.Join(pdir, fmt.Sprintf("%04d.pcapng", i))
			_, errs[i] = col.pcap(ctx, cids[i], files[i], "--format", "pcapng")
		}
	})
	got := retrievedFrames(t, work, files, errs)

	var flows, packets, fragments, multi int
	for i, cid := range cids {
		if errs[i] != nil {
			t.Errorf("flow %s (%s) from %s: %v", cid, firstTuple(expected[cid], cid), strings.Join(sources[cid], ", "), errs[i])
			continue
		}
		want := expected[cid]
		if len(sources[cid]) > 1 {
			multi++
			want = timeOrder(want)
		}
		if d := diffFrames(want, got[i], len(sources[cid]) > 1); d != "" {
			t.Errorf("flow %s (%s) from %s: pcap differs from tshark's frames: %s",
				cid, firstTuple(want, cid), strings.Join(sources[cid], ", "), d)
			continue
		}
		flows++
		packets += len(want)
		for _, f := range want {
			if f.nonFirst {
				fragments++
			}
		}
	}
	t.Logf("compared %d flows (%d named by several captures: their pcap merges all, in time order), %d packets "+
		"(%d of them non-first IP fragments, joined to their datagram's flow); %d records listed, %d link-layer pseudo flows and %d tunnel flows (outer 5-tuples) skipped",
		flows, multi, packets, fragments, records, pseudo, tunnelFlows)
}

// readFramesNoFatal is readFrames that records damage instead of failing.
func readFramesNoFatal(t *testing.T, path string, damaged *bool) ([]frame, bool) {
	frames, ok := readFrames(t, path)
	*damaged = !ok
	return frames, ok
}

// windows covers the frames' times (tshark epochs) with query windows
// within the API's 168 h maximum: one window per cluster of times, so
// that a capture spanning years (a few frames without timestamps among
// recent ones) needs a few windows, not thousands.
func windows(frames []frame) []string {
	var secs []int64
	for _, f := range frames {
		if f.cid == "" {
			continue
		}
		v, _ := strconv.ParseFloat(f.epoch, 64) // "" (no timestamp) is 0
		secs = append(secs, int64(math.Floor(v)))
	}
	slices.Sort(secs)
	const step = 167 * 3600
	var out []string
	end := int64(math.MinInt64)
	for _, s := range secs {
		if s <= end {
			continue
		}
		a := max(s-1, 0)
		end = a + step
		out = append(out, fmt.Sprintf("after %d and before %d", a, end))
	}
	return out
}

func firstTuple(frames []frame, cid string) string {
	for _, f := range frames {
		if f.cid == cid {
			return f.tuple
		}
	}
	return "?"
}

// timeOrder sorts frames by time, stably.
func timeOrder(fs []frame) []frame {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b frame) int { return epochNS(a.epoch).Cmp(epochNS(b.epoch)) })
	return out
}

// diffFrames compares two frame sequences; with tiesFree, frames with
// equal timestamps may come in any order (flows merged from several
// captures).
func diffFrames(want, got []frame, tiesFree bool) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d frames, want %d%s", len(got), len(want), firstDiff(want, got))
	}
	if tiesFree {
		want, got = canonTies(want), canonTies(got)
	}
	for i := range want {
		w, g := &want[i], &got[i]
		if w.epoch == "" && g.epoch == "0.000000000" {
			// A pcapng Simple Packet Block has no timestamp (tshark
			// shows none); a pcap record needs one: tapir writes 0.
			w = &frame{num: w.num, epoch: g.epoch, length: w.length, capLen: w.capLen, data: w.data}
		}
		if w.epoch != g.epoch || w.length != g.length || w.capLen != g.capLen || !bytes.Equal(w.data, g.data) {
			return fmt.Sprintf("frame %d: got %s, want %s (original frame %d)%s", i+1, g, w, w.num, bytesNote(w.data, g.data))
		}
	}
	return ""
}

func firstDiff(want, got []frame) string {
	for i := range min(len(want), len(got)) {
		if want[i].epoch != got[i].epoch || !bytes.Equal(want[i].data, got[i].data) {
			return fmt.Sprintf("; first difference at %d: got %s, want %s (original frame %d)", i+1, &got[i], &want[i], want[i].num)
		}
	}
	return ""
}

func bytesNote(w, g []byte) string {
	if bytes.Equal(w, g) {
		return ""
	}
	return fmt.Sprintf("; bytes differ (%d vs %d bytes)", len(g), len(w))
}

// canonTies orders frames of equal time by their bytes.
func canonTies(fs []frame) []frame {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b frame) int {
		if c := epochNS(a.epoch).Cmp(epochNS(b.epoch)); c != 0 {
			return c
		}
		return bytes.Compare(a.data, b.data)
	})
	return out
}

// retrievedFrames reads the fetched pcaps with tshark and tcpdump. Classic
// pcap files with the same header are concatenated first (records
// verbatim) so that the tools run once per link type, not once per flow.
func retrievedFrames(t *testing.T, work string, files []string, errs []error) [][]frame {
	out := make([][]frame, len(files))
	type group struct {
		hdr     []byte
		members []int
		counts  []int
		recs    [][]byte
	}
	groups := map[string]*group{}
	var order []string
	for i, f := range files {
		if errs[i] != nil {
			continue
		}
		h, raw, recs, err := readPcapRecords(f)
		if err != nil {
			frames, _ := readFrames(t, f) // pcapng: read it alone
			out[i] = frames
			continue
		}
		key := fmt.Sprintf("%v/%v/%d", h.order, h.nano, h.linkType)
		g := groups[key]
		if g == nil {
			g = &group{hdr: slices.Clone(raw)}
			groups[key] = g
			order = append(order, key)
		}
		if h.snapLen > h.order.Uint32(g.hdr[16:]) {
			h.order.PutUint32(g.hdr[16:], h.snapLen)
		}
		g.members = append(g.members, i)
		g.counts = append(g.counts, len(recs))
		g.recs = append(g.recs, recs...)
	}
	for n, key := range order {
		g := groups[key]
		path := filepath.Join(work, fmt.Sprintf("retrieved-%d.pcap", n))
		buf := slices.Clone(g.hdr)
		for _, r := range g.recs {
			buf = append(buf, r...)
		}
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		frames, ok := readFrames(t, path)
		if !ok {
			t.Errorf("tshark could not read the retrieved pcaps (%s) whole", key)
		}
		if len(frames) != len(g.recs) {
			t.Fatalf("tshark read %d frames of %d records in the retrieved pcaps", len(frames), len(g.recs))
		}
		off := 0
		for j, i := range g.members {
			out[i] = frames[off : off+g.counts[j]]
			off += g.counts[j]
		}
	}
	return out
}

// parallel runs fn(0..n-1) on k goroutines.
func parallel(n, k int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// grepLines returns the first n lines of s containing sub.
func grepLines(s, sub string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
