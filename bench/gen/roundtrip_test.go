package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/block"
)

// bin holds the binaries TestMain built: the sensor, the tapir CLI and
// benchtool.
var bin struct {
	sensor, tapir, benchtool string
	err                      error
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "tapir-gen-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.err = buildBinaries(dir)
		return m.Run()
	}()
	os.Exit(code)
}

// buildBinaries builds tapir-sensor, tapir and benchtool into dir.
func buildBinaries(dir string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	bin.sensor = filepath.Join(dir, "tapir-sensor")
	bin.tapir = filepath.Join(dir, "tapir")
	bin.benchtool = filepath.Join(dir, "benchtool")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/tapir-sensor", "./cmd/tapir", "./bench/benchtool")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, out)
	}
	return nil
}

func needBinaries(t *testing.T) {
	t.Helper()
	if bin.err != nil {
		t.Fatalf("building the binaries: %v", bin.err)
	}
}

// roundTripConfig is the reduced but concurrent trace of the round-trip
// tests: 20,000 flows, 7,500 open at once, with a few long flows.
func roundTripConfig() Config {
	c := DefaultConfig()
	c.Flows, c.Open = 20_000, 7_500
	c.Long = 0.0003
	return c
}

// writeTestTrace writes the trace of cfg into dir and returns its path
// and its flows (with digests), indexed by flow number.
func writeTestTrace(t *testing.T, cfg Config, dir string) (string, []Flow, Stats) {
	t.Helper()
	path := filepath.Join(dir, "trace.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := newPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	flows := make([]Flow, cfg.Flows)
	st, err := Generate(cfg, true, pw.write, func(fl *Flow) { flows[fl.ID] = *fl })
	if err == nil {
		err = pw.flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path, flows, st
}

// sensorRun is the outcome of one tapir-sensor run.
type sensorRun struct {
	stderr string
	maxRSS int64 // KiB
}

// runSensor runs tapir-sensor on a file with the given outputs.
func runSensor(t *testing.T, args ...string) sensorRun {
	t.Helper()
	cmd := exec.Command(bin.sensor, append([]string{"--sensor-id", "gen-test", "--log-level", "info"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tapir-sensor %v: %v\n%s", args, err, stderr.String())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r := sensorRun{stderr: stderr.String()}
	if ru != nil {
		r.maxRSS = ru.Maxrss
	}
	return r
}

var finishedRE = regexp.MustCompile(`capture finished" packets=(\d+) .*stored_packets=(\d+)`)

// checkAllStored checks the sensor's summary: every packet read and
// stored.
func checkAllStored(t *testing.T, r sensorRun, want int) {
	t.Helper()
	m := finishedRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no capture summary in the sensor's log:\n%s", r.stderr)
	}
	if m[1] != strconv.Itoa(want) || m[2] != m[1] {
		t.Fatalf("sensor read %s packets and stored %s, want %d both", m[1], m[2], want)
	}
}

// record is what the tests read of an ECS flow record.
type record struct {
	Source      endpoint `json:"source"`
	Destination endpoint `json:"destination"`
	Network     struct {
		CommunityID string `json:"community_id"`
		Packets     int    `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Tapir struct {
		FlowID string `json:"flow_id"`
		Final  bool   `json:"final"`
	} `json:"tapir"`
}

type endpoint struct {
	IP string `json:"ip"`
}

// flowTotals sums the final records' packets and bytes per generated
// flow (found by its client address) and keeps each flow's flow IDs and
// Community ID.
type flowTotals struct {
	packets []int
	bytes   []uint64
	ids     [][]string
	cid     []string
}

func readRecords(t *testing.T, path string, flows []Flow) *flowTotals {
	t.Helper()
	byClient := clientIndex(flows)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tot := &flowTotals{packets: make([]int, len(flows)), bytes: make([]uint64, len(flows)),
		ids: make([][]string, len(flows)), cid: make([]string, len(flows))}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("flow record: %v", err)
		}
		if !r.Tapir.Final {
			continue
		}
		i, ok := -1, false
		for _, ip := range []string{r.Source.IP, r.Destination.IP} {
			if a, err := netip.ParseAddr(ip); err == nil {
				if i, ok = byClient[addrKey(a)]; ok {
					break
				}
			}
		}
		if !ok {
			t.Fatalf("record for no generated flow: %s", sc.Bytes())
		}
		tot.packets[i] += r.Network.Packets
		tot.bytes[i] += r.Network.Bytes
		tot.ids[i] = append(tot.ids[i], r.Tapir.FlowID)
		tot.cid[i] = r.Network.CommunityID
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tot
}

// checkTotals checks that the records account for every packet and byte
// of every flow.
func checkTotals(t *testing.T, tot *flowTotals, flows []Flow) {
	t.Helper()
	bad := 0
	for i := range flows {
		f := &flows[i]
		if tot.packets[i] != f.Packets[0]+f.Packets[1] || tot.bytes[i] != f.Bytes[0]+f.Bytes[1] {
			if bad++; bad <= 5 {
				t.Errorf("flow %d: records count %d packets %d bytes, generated %d %d",
					f.ID, tot.packets[i], tot.bytes[i], f.Packets[0]+f.Packets[1], f.Bytes[0]+f.Bytes[1])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d flows miscounted", bad, len(flows))
	}
}

func clientIndex(flows []Flow) map[[16]byte]int {
	m := make(map[[16]byte]int, len(flows))
	for i := range flows {
		m[flows[i].Client] = i
	}
	return m
}

// addrKey is the Flow.Client form of an address.
func addrKey(a netip.Addr) [16]byte {
	var k [16]byte
	if a.Is4() {
		b := a.As4()
		copy(k[:], b[:])
		return k
	}
	return a.As16()
}

// pullPcap runs `tapir pcap --blocks DIR` with extra selection flags.
func pullPcap(t *testing.T, blocks, out string, sel ...string) {
	t.Helper()
	args := append([]string{"pcap", "--blocks", blocks, "-o", out}, sel...)
	if o, err := exec.Command(bin.tapir, args...).CombinedOutput(); err != nil {
		t.Fatalf("tapir %v: %v\n%s", args, err, o)
	}
}

// digestPcap reads a pcap that tapir wrote and recomputes, per generated
// flow, the digest of its packets in file order.
func digestPcap(t *testing.T, path string, flows []Flow) ([][]byte, []int) {
	t.Helper()
	byClient := clientIndex(flows)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]hash.Hash, len(flows))
	counts := make([]int, len(flows))
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.Length != len(data) {
			t.Fatalf("packet stored cut: %d of %d bytes", len(data), ci.Length)
		}
		c, _ := clientOf(data)
		i, ok := byClient[c]
		if !ok {
			t.Fatalf("retrieved packet of no generated flow (client %v)", c)
		}
		if hs[i] == nil {
			hs[i] = sha256.New()
		}
		digestPacket(hs[i], ci.Timestamp.UnixNano(), data)
		counts[i]++
	}
	sums := make([][]byte, len(flows))
	for i, h := range hs {
		if h != nil {
			sums[i] = h.Sum(nil)
		}
	}
	return sums, counts
}

// TestSensorRoundTrip is the many-flows round trip through the real
// binaries: a 20,000-flow trace with 7,500 flows open at once goes
// through tapir-sensor --blocks-out --flows-out; `tapir pcap --blocks`
// gives back every flow's packets, byte for byte and in order (the
// generator's per-flow digest of times, lengths and bytes); the records
// count every packet and byte of every flow; long flows span many
// blocks, and pulling one by Community ID gives exactly its packets.
func TestSensorRoundTrip(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	cfg := roundTripConfig()
	trace, flows, st := writeTestTrace(t, cfg, dir)
	if st.MaxOpen != cfg.Open {
		t.Fatalf("trace has at most %d flows open at once, want %d", st.MaxOpen, cfg.Open)
	}
	blocks := filepath.Join(dir, "blocks")
	records := filepath.Join(dir, "flows.json")
	run := runSensor(t, "-r", trace, "--blocks-out", blocks, "--flows-out", records)
	checkAllStored(t, run, st.Packets)
	tot := readRecords(t, records, flows)
	checkTotals(t, tot, flows)

	out := filepath.Join(dir, "all.pcap")
	pullPcap(t, blocks, out)
	sums, counts := digestPcap(t, out, flows)
	bad := 0
	for i := range flows {
		f := &flows[i]
		if !bytes.Equal(sums[i], f.Digest) {
			if bad++; bad <= 5 {
				t.Errorf("flow %d (%s): %d packets retrieved of %d, bytes or order differ",
					f.ID, f.End, counts[i], f.Packets[0]+f.Packets[1])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d flows differ after the round trip", bad, len(flows))
	}

	blocksPer := blocksPerFlow(t, blocks)
	long := 0
	for i := range flows {
		f := &flows[i]
		if !f.Long {
			continue
		}
		long++
		n := 0
		for _, id := range tot.ids[i] {
			n += blocksPer[id]
		}
		if n < 20 {
			t.Errorf("long flow %d (%d packets) is in %d blocks, want many", f.ID, f.Packets[0]+f.Packets[1], n)
		}
		one := filepath.Join(dir, fmt.Sprintf("flow-%d.pcap", f.ID))
		pullPcap(t, blocks, one, "--community-id", tot.cid[i])
		s, c := digestPcap(t, one, flows)
		if !bytes.Equal(s[i], f.Digest) || sumInts(c) != c[i] {
			t.Errorf("long flow %d by Community ID: %d packets of %d, %d of other flows", f.ID, c[i],
				f.Packets[0]+f.Packets[1], sumInts(c)-c[i])
		}
	}
	if long == 0 {
		t.Fatal("the trace has no long flow")
	}
}

// blocksPerFlow counts the blocks of each flow ID in a block directory.
func blocksPerFlow(t *testing.T, dir string) map[string]int {
	t.Helper()
	m := make(map[string]int)
	r := block.DirReader{Dir: dir, Filter: func(meta block.Meta) bool {
		m[meta.FlowID.String()]++
		return false
	}}
	if _, err := r.Read(func(block.Meta, *block.Block) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func sumInts(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

// TestSensorClockStep runs the sensor over the round-trip trace cut into
// 10 slices, each shifted back to the trace's start (the host clock
// stepped back 9 times while capturing): every packet is read and stored,
// the records account for every packet and byte of every flow, and the
// sensor's peak memory stays within 1.5x (plus 64 MiB) that of the
// forward-time run of the same trace.
func TestSensorClockStep(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	trace, flows, st := writeTestTrace(t, roundTripConfig(), dir)
	stepped := filepath.Join(dir, "stepped.pcap")
	if o, err := exec.Command(bin.benchtool, "stepback", "-slices", "10", trace, stepped).CombinedOutput(); err != nil {
		t.Fatalf("benchtool stepback: %v\n%s", err, o)
	}
	if back := countStepsBack(t, stepped); back != 9 {
		t.Fatalf("stepped trace goes back in time %d times, want 9", back)
	}

	fwd := runSensor(t, "-r", trace, "--blocks-out", filepath.Join(dir, "b-fwd"), "--flows-out", filepath.Join(dir, "f-fwd.json"))
	records := filepath.Join(dir, "f-step.json")
	step := runSensor(t, "-r", stepped, "--blocks-out", filepath.Join(dir, "b-step"), "--flows-out", records)
	checkAllStored(t, step, st.Packets)
	checkTotals(t, readRecords(t, records, flows), flows)
	if limit := fwd.maxRSS*3/2 + 64<<10; step.maxRSS > limit {
		t.Errorf("peak RSS %d KiB with the clock stepping back, %d KiB forward (limit %d)", step.maxRSS, fwd.maxRSS, limit)
	}
	t.Logf("peak RSS: forward %d MiB, stepped %d MiB", fwd.maxRSS>>10, step.maxRSS>>10)
}

// countStepsBack counts the records of a µs pcap whose time is before the
// previous record's.
func countStepsBack(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var prev int64
	forEachRecord(t, raw, func(ts int64, _ []byte) {
		if ts < prev {
			n++
		}
		prev = ts
	})
	return n
}
