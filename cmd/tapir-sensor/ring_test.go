package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// genTrace writes a many-flows trace with bench/gen and returns it and its
// manifest (flow tuple -> SHA-256 of its packets in order).
func genTrace(t *testing.T, flows, open int) (string, map[flow.Key]string) {
	t.Helper()
	dir := t.TempDir()
	pcap, man := filepath.Join(dir, "many.pcap"), filepath.Join(dir, "many.tsv")
	cmd := exec.Command("go", "run", "./bench/gen", "-flows", strconv.Itoa(flows), "-open", strconv.Itoa(open),
		"-seed", "7", "-o", pcap, "-manifest", man)
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench/gen: %v\n%s", err, out)
	}
	f, err := os.Open(man)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[flow.Key]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if strings.HasPrefix(c[0], "#") {
			continue
		}
		proto, _ := strconv.Atoi(c[1])
		cport, _ := strconv.Atoi(c[3])
		sport, _ := strconv.Atoi(c[5])
		src, fam := flow.AddrFromNetip(netip.MustParseAddr(c[2]))
		dst, _ := flow.AddrFromNetip(netip.MustParseAddr(c[4]))
		k, _ := flow.Tuple{Src: src, Dst: dst, SrcPort: uint16(cport), DstPort: uint16(sport), Proto: uint8(proto), Family: fam}.Key()
		want[k] = c[len(c)-1]
	}
	return pcap, want
}

// segmentDigests reads every block the sensor wrote to dir and returns,
// per flow key, the SHA-256 of its packets in block order (as bench/gen
// digests them: time, length, bytes).
func segmentDigests(t *testing.T, dir string) map[flow.Key]string {
	t.Helper()
	type blk struct {
		id    flow.ID
		first int64 // of the flow instance (blocks of one instance share the ID)
		seq   uint32
		pkts  [][]byte // digest input per packet
	}
	byKey := map[flow.Key][]blk{}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var st block.ReadStats
		err = block.ReadSegment(name, data, nil, func(m block.Meta, b *block.Block) error {
			var x blk
			x.id, x.seq, x.first = m.FlowID, m.Seq, m.First
			r := b.Reader()
			for {
				ts, _, d, err := r.Next()
				if err != nil {
					break
				}
				rec := binary.BigEndian.AppendUint64(nil, uint64(ts))
				rec = binary.BigEndian.AppendUint32(rec, uint32(len(d)))
				x.pkts = append(x.pkts, append(rec, d...))
			}
			byKey[m.Key] = append(byKey[m.Key], x)
			return nil
		}, &st)
		if err != nil || st.Damaged() {
			t.Fatalf("%s: %v %+v", name, err, st)
		}
	}
	got := map[flow.Key]string{}
	for k, bs := range byKey {
		// A 5-tuple can carry several flow instances (port reuse): order
		// instances by their first packet, blocks by number.
		start := map[flow.ID]int64{}
		for _, b := range bs {
			if f, ok := start[b.id]; !ok || b.first < f {
				start[b.id] = b.first
			}
		}
		slices.SortFunc(bs, func(a, b blk) int {
			if c := cmp.Compare(start[a.id], start[b.id]); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		h := sha256.New()
		for _, b := range bs {
			for _, p := range b.pkts {
				h.Write(p)
			}
		}
		got[k] = hex.EncodeToString(h.Sum(nil))
	}
	return got
}

// summaryInt returns a field of the sensor's "capture finished" line.
func summaryInt(t *testing.T, stderr, field string) int {
	t.Helper()
	m := regexp.MustCompile(` ` + field + `=(\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no %s in %s", field, stderr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestRingRoundTripManyFlows (issue 14): with thousands of flows open at
// once, every flow's packets come back from the blocks byte for byte and
// in order, with the default buffer and with a cap so small that the
// ring closes blocks early all the time (counted).
func TestRingRoundTripManyFlows(t *testing.T) {
	pcap, want := genTrace(t, 20000, 8000)
	for _, maxBuffered := range []int{0, 2 << 20} {
		t.Run(fmt.Sprint("max_buffered=", maxBuffered), func(t *testing.T) {
			args := []string{"-r", pcap, "--flows-out", filepath.Join(t.TempDir(), "f.json"), "--sensor-id", "t"}
			if maxBuffered > 0 {
				cfg := filepath.Join(t.TempDir(), "s.yaml")
				if err := os.WriteFile(cfg, fmt.Appendf(nil, "blocks:\n  max_buffered: %d\n", maxBuffered), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			blocks := t.TempDir()
			var out, errb bytes.Buffer
			if code := run(append(args, "--blocks-out", blocks), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			got := segmentDigests(t, blocks)
			if len(got) != len(want) {
				t.Errorf("blocks hold %d flows, the trace %d", len(got), len(want))
			}
			bad := 0
			for k, d := range want {
				if got[k] != d {
					if bad++; bad <= 3 {
						t.Errorf("flow %v: packets differ from the trace's", k.Forward())
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d flows differ", bad, len(want))
			}
			if early := summaryInt(t, errb.String(), "blocks_closed_early"); maxBuffered > 0 && early == 0 {
				t.Errorf("a %d-byte cap closed no block early", maxBuffered)
			}
		})
	}
}

// TestBlockMemoryCap (issue 14): blocks.max_buffered bounds the sensor's
// memory whatever the number of open flows: with 8000 flows open at once
// and an 8 MiB cap, the sensor binary's peak RSS stays under 100 MB (the
// per-flow block layout used 149 MB: its cap counted only the bytes in
// the blocks, not the buffers holding them).
func TestBlockMemoryCap(t *testing.T) {
	pcap, _ := genTrace(t, 20000, 8000)
	bin := buildSensor(t)
	cfg := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "blocks:\n  max_buffered: %d\n", 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "-r", pcap, "--blocks-out", t.TempDir(), "--flows-out", filepath.Join(t.TempDir(), "f.json"))
	rss := runPeakRSS(t, cmd)
	t.Logf("peak RSS %d MiB", rss>>10)
	if rss > 100<<10 {
		t.Fatalf("peak RSS %d MiB with an 8 MiB block cap, want under 100", rss>>10)
	}
}

// runPeakRSS runs cmd and returns its peak resident set in KiB, polling
// VmHWM in /proc (the rusage of a child started by os/exec also counts
// the parent's memory from before exec).
func runPeakRSS(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	peak := 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			return peak
		case <-tick.C:
			data, _ := os.ReadFile(status)
			if m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(data); m != nil {
				n, _ := strconv.Atoi(string(m[1]))
				peak = max(peak, n)
			}
		}
	}
}
