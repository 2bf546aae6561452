package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// countRecords counts the JSON lines of a flows file, failing on a line
// that is not a whole JSON object (a record split by the reopen).
func countRecords(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: line %d is not a JSON object: %v", path, n+1, err)
		}
		n++
	}
	return n
}

// TestSIGHUPReopensFlowsOut: logrotate moves --flows-out away and sends
// SIGHUP; the sensor writes on into a new file at the path, and the two
// files together hold exactly the records of an uninterrupted run on the
// same capture.
func TestSIGHUPReopensFlowsOut(t *testing.T) {
	bin := buildSensor(t)
	pcap := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	dir := t.TempDir()

	ref := filepath.Join(dir, "ref.json")
	if out, err := exec.Command(bin, "-r", pcap, "--flows-out", ref, "--sensor-id", "t").CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	want := countRecords(t, ref)

	data, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "flows.json")
	cmd := exec.Command(bin, "-r", "-", "--flows-out", out, "--sensor-id", "t")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	half := len(data) / 2
	if _, err := stdin.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	rotated := out + ".1"
	if err := os.Rename(out, rotated); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	var seen []string
wait:
	for {
		select {
		case l, ok := <-logs:
			if !ok {
				t.Fatalf("sensor exited before reopening\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, "flows output reopened") {
				break wait
			}
		case <-deadline:
			t.Fatalf("no reopen logged 20 s after SIGHUP\n%s", strings.Join(seen, "\n"))
		}
	}
	go func() {
		for range logs {
		}
	}()
	if _, err := stdin.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	err = cmd.Wait()
	pw.Close()
	if err != nil {
		t.Fatalf("sensor: %v", err)
	}
	a, b := countRecords(t, rotated), countRecords(t, out)
	t.Logf("records: %d before the rotation, %d after, %d in the uninterrupted run", a, b, want)
	if b == 0 {
		t.Error("nothing written to the reopened file")
	}
	if a+b != want {
		t.Errorf("rotated %d + reopened %d = %d records, uninterrupted run %d", a, b, a+b, want)
	}
}
