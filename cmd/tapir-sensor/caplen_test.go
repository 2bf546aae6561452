package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// zeroCaplen rewrites every third packet of a little-endian pcap file as
// captured with no bytes (capture length 0, wire length kept) and returns
// the new file and how many packets it changed.
func zeroCaplen(t *testing.T, src string) (string, int) {
	t.Helper()
	raw, err := os.ReadFile(testenv.Plain(t, src))
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(raw) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian microsecond pcap", src)
	}
	out := append([]byte(nil), raw[:24]...)
	zeroed := 0
	for i, off := 0, 24; off+16 <= len(raw); i++ {
		incl := int(binary.LittleEndian.Uint32(raw[off+8:]))
		hdr := append([]byte(nil), raw[off:off+16]...)
		data := raw[off+16 : off+16+incl]
		if i%3 == 2 {
			binary.LittleEndian.PutUint32(hdr[8:], 0)
			data = nil
			zeroed++
		}
		out = append(append(out, hdr...), data...)
		off += 16 + incl
	}
	path := filepath.Join(t.TempDir(), "caplen0.pcap")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, zeroed
}

// TestCaplenZeroNotCountedAsStored (issue 13 item 11): packets captured
// with no bytes go into no block, so flow records must not count them as
// stored: the stored packets of the final records add up to the packets
// the blocks hold.
func TestCaplenZeroNotCountedAsStored(t *testing.T) {
	pcap, zeroed := zeroCaplen(t, testenv.Pcap(t, "zeek/wikipedia.pcap"))
	flows := filepath.Join(t.TempDir(), "flows.json")
	var out, errb bytes.Buffer
	if code := run([]string{"-r", pcap, "--flows-out", flows, "--blocks-out", t.TempDir(), "--sensor-id", "t"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	m := regexp.MustCompile(`packets=(\d+) .* stored_packets=(\d+)`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("no summary in %s", errb.String())
	}
	packets, _ := strconv.Atoi(m[1])
	inBlocks, _ := strconv.Atoi(m[2])
	if inBlocks != packets-zeroed {
		t.Fatalf("blocks hold %d packets of %d, want all but the %d empty ones", inBlocks, packets, zeroed)
	}
	data, err := os.ReadFile(flows)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec struct {
			Tapir struct {
				Final  bool `json:"final"`
				Source struct {
					StoredPackets int `json:"stored_packets"`
				} `json:"source"`
				Destination struct {
					StoredPackets int `json:"stored_packets"`
				} `json:"destination"`
			} `json:"tapir"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Tapir.Final {
			recorded += rec.Tapir.Source.StoredPackets + rec.Tapir.Destination.StoredPackets
		}
	}
	if recorded != inBlocks {
		t.Fatalf("records count %d stored packets, blocks hold %d", recorded, inBlocks)
	}
}
