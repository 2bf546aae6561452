package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// concatPcap writes n copies of a pcap file end to end (what `mergecap -a`
// does): packet time steps back at every copy's start.
func concatPcap(t *testing.T, src string, n int) string {
	t.Helper()
	raw, err := os.ReadFile(testenv.Plain(t, src))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), raw...)
	for i := 1; i < n; i++ {
		out = append(out, raw[24:]...) // records after the global header
	}
	path := filepath.Join(t.TempDir(), "concat.pcap")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runReasons runs the sensor offline and returns its records' end reasons
// counted, and its stderr.
func runReasons(t *testing.T, pcap string, args ...string) (map[string]int, string) {
	t.Helper()
	flows := filepath.Join(t.TempDir(), "flows.json")
	var out, errb bytes.Buffer
	args = append([]string{"-r", pcap, "--flows-out", flows, "--blocks-out", t.TempDir(), "--sensor-id", "t"}, args...)
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile(flows)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec struct {
			Event struct {
				Reason string `json:"reason"`
			} `json:"event"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		reasons[rec.Event.Reason]++
	}
	return reasons, errb.String()
}

// TestClockStepsBackDoNotStallExpiry (issue 14): a capture whose packet
// time steps back (20 copies of one trace end to end) ends flows by idle
// timeout in every copy as in the single trace, instead of holding them
// until packet time catches up; the steps are counted and the first is
// logged once.
func TestClockStepsBackDoNotStallExpiry(t *testing.T) {
	const copies = 20
	src := testenv.Pcap(t, "community-id-spec/combined.pcap.gz")
	one, _ := runReasons(t, src, "--idle-timeout", "5s")
	many, stderr := runReasons(t, concatPcap(t, src, copies), "--idle-timeout", "5s")
	total := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	if total(many) != copies*total(one) {
		t.Errorf("%d records from %d copies, want %d×%d (%v vs %v)", total(many), copies, copies, total(one), many, one)
	}
	if want := (copies - 1) * one["idle-timeout"]; many["idle-timeout"] < want {
		t.Errorf("%d flows ended by idle timeout, want at least %d: expiry stalled after a clock step (%v)", many["idle-timeout"], want, many)
	}
	if !strings.Contains(stderr, "clock_steps=19") {
		t.Errorf("summary does not count 19 clock steps:\n%s", stderr)
	}
	if n := strings.Count(stderr, "packet time stepped back"); n != 1 {
		t.Errorf("clock step logged %d times, want once:\n%s", n, stderr)
	}
}

// TestStrayTimestampNoLeap: a pcapng packet without a timestamp (read as
// time 0) amid packets of 2012 is a clock step back; the packets after it
// must not make the clock leap 42 years forward and fire every flow's
// update and active timeout.
func TestStrayTimestampNoLeap(t *testing.T) {
	reasons, stderr := runReasons(t, testenv.Pcap(t, "gopacket/pcapgo-tests/le/test011.pcapng"))
	if reasons["active"] > 0 || reasons["active-timeout"] > 0 {
		t.Errorf("records %v: updates or active timeouts from a clock leap", reasons)
	}
	if !strings.Contains(stderr, "clock_steps=1") {
		t.Errorf("the step back to time 0 is not counted:\n%s", stderr)
	}
}
