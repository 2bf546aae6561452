package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

var (
	binsOnce sync.Once
	binsDir  string
	binsErr  error
)

// binaries builds tapir-sensor and tapir once for the tests of this file
// and returns their directory.
func binaries(t *testing.T) (sensor, tapir string) {
	t.Helper()
	binsOnce.Do(func() {
		binsDir, binsErr = os.MkdirTemp("", "tapir-bins-")
		if binsErr != nil {
			return
		}
		root := testenv.RepoRoot(t)
		cmd := exec.Command("go", "build", "-o", binsDir+"/", "./cmd/tapir-sensor", "./cmd/tapir")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binsErr = &buildError{err: err, out: string(out)}
		}
	})
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	return filepath.Join(binsDir, "tapir-sensor"), filepath.Join(binsDir, "tapir")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binsDir != "" {
		os.RemoveAll(binsDir)
	}
	os.Exit(code)
}

// ecsLine is what the tests read of an ECS flow record.
type ecsLine struct {
	ECS struct {
		Version string `json:"version"`
	} `json:"ecs"`
	Network struct{ Packets uint64 }
	Tapir   struct {
		FlowID string `json:"flow_id"`
		Final  bool
		Source struct {
			StoredPackets uint64 `json:"stored_packets"`
		}
		Destination struct {
			StoredPackets uint64 `json:"stored_packets"`
		}
	}
}

// readFlows reads a --flows-out file.
func readFlows(t *testing.T, path string) []ecsLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ecsLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l ecsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// runBin runs a binary, failing the test on a non-zero exit.
func runBin(t *testing.T, bin string, args ...string) {
	t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

// pcapPackets counts the packets of a pcap file.
func pcapPackets(t *testing.T, path string) int {
	t.Helper()
	_, pkts := testenv.ReadPcap(t, path)
	return len(pkts)
}

// firstPackets writes the first n packets of a pcap file to a new file.
func firstPackets(t *testing.T, src string, n int) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "first.pcap")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := pcapgo.NewWriterNanos(out)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestFlowIDsUniqueAcrossRuns is the reproduction: the sensor
// reads reassembly.pcap, then a copy of its first packets, under the same
// sensor id into the same block directory. The runs' flows must have
// distinct IDs (the flows begin at the same packet times), and `tapir
// pcap --blocks --flow-id` must give each first-run flow exactly its own
// packets, untouched by the second run.
func TestFlowIDsUniqueAcrossRuns(t *testing.T) {
	sensor, tapir := binaries(t)
	full := testenv.Plain(t, testenv.Pcap(t, "zeek/reassembly.pcap"))
	part := firstPackets(t, full, pcapPackets(t, full)/2)
	dir := t.TempDir()
	blocks := filepath.Join(dir, "blocks")
	var runs [2][]ecsLine
	for i, in := range []string{full, part} {
		out := filepath.Join(dir, "flows-"+strconv.Itoa(i)+".json")
		runBin(t, sensor, "-r", in, "--sensor-id", "rerun", "--flows-out", out, "--blocks-out", blocks)
		runs[i] = readFlows(t, out)
		if len(runs[i]) == 0 {
			t.Fatalf("run %d: no flow record", i)
		}
	}
	first := map[string]ecsLine{}
	for _, r := range runs[0] {
		if r.Tapir.Final {
			first[r.Tapir.FlowID] = r
		}
	}
	for _, r := range runs[1] {
		if _, dup := first[r.Tapir.FlowID]; dup {
			t.Errorf("flow id %s given in both runs", r.Tapir.FlowID)
		}
	}
	checked := 0
	for id, r := range first {
		stored := r.Tapir.Source.StoredPackets + r.Tapir.Destination.StoredPackets
		if stored != r.Network.Packets {
			t.Fatalf("flow %s: stored %d of %d packets", id, stored, r.Network.Packets)
		}
		pcap := filepath.Join(dir, id+".pcap")
		runBin(t, tapir, "pcap", "--blocks", blocks, "--flow-id", id, "-o", pcap)
		if got := pcapPackets(t, pcap); uint64(got) != stored {
			t.Errorf("flow %s: tapir pcap gives %d packets, the first run stored %d", id, got, stored)
		}
		checked++
	}
	t.Logf("%d flows in run 1, %d records in run 2, every first-run pcap intact", checked, len(runs[1]))
}

// TestECSVersionOnEveryRecord: every record the sensor writes, of real
// captures (with application metadata and timelines), carries ecs.version.
func TestECSVersionOnEveryRecord(t *testing.T) {
	sensor, _ := binaries(t)
	for _, rel := range []string{"zeek/wikipedia.pcap", "zeek/ssh.pcap", "community-id-spec/combined.pcap.gz"} {
		out := filepath.Join(t.TempDir(), "flows.json")
		runBin(t, sensor, "-r", testenv.Pcap(t, rel), "--sensor-id", "ecs", "--flows-out", out)
		recs := readFlows(t, out)
		if len(recs) == 0 {
			t.Fatalf("%s: no record", rel)
		}
		for i, r := range recs {
			if r.ECS.Version != "9.4.0" {
				t.Fatalf("%s: record %d: ecs.version %q, want %q", rel, i, r.ECS.Version, "9.4.0")
			}
		}
		t.Logf("%s: %d records", rel, len(recs))
	}
}

// TestOutputModesUnderUmask022: outside systemd (umask 022) the flows
// file, the block directory and its segment files are private to the
// sensor's user: 0600 files, 0700 directories.
func TestOutputModesUnderUmask022(t *testing.T) {
	sensor, _ := binaries(t)
	dir := t.TempDir()
	flows := filepath.Join(dir, "flows.json")
	blocks := filepath.Join(dir, "out", "blocks")
	cmd := exec.Command("sh", "-c", `umask 022 && exec "$@"`, "sh", sensor,
		"-r", testenv.Pcap(t, "zeek/wikipedia.pcap"), "--sensor-id", "modes", "--flows-out", flows, "--blocks-out", blocks)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sensor: %v\n%s", err, out)
	}
	check := func(path string, want os.FileMode) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", path, got, want)
		}
	}
	check(flows, 0o600)
	check(filepath.Join(dir, "out"), 0o700)
	check(blocks, 0o700)
	segs, _ := filepath.Glob(filepath.Join(blocks, "*"))
	if len(segs) == 0 {
		t.Fatal("no segment file")
	}
	for _, s := range segs {
		check(s, 0o600)
	}
}
