package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestFlowsOutIsEncodingJSON: every --flows-out line of real captures
// (application metadata, VLANs, link pseudo flows, ICMP, SSH, timelines)
// is byte for byte what encoding/json writes for the same ECS object, so
// the append-style encoder changes no output.
func TestFlowsOutIsEncodingJSON(t *testing.T) {
	sensor, _ := binaries(t)
	type plain flow.ECS // encoding/json's rendering, without ECS.MarshalJSON
	seen := map[string]int{}
	for _, rel := range []string{"zeek/wikipedia.pcap", "zeek/ssh.pcap", "zeek/q-in-q.pcap", "zeek/linuxsll-arp.pcap",
		"zeek/icmp-destunreach-udp.pcap", "zeek/ipv6-fragmented-dns.pcap", "zeek/http-vlan-0.pcap", "zeek/tls-conn-with-extensions.pcap", "arkime/curl-enabled-tls13.pcap",
		"community-id-spec/combined.pcap.gz"} {
		out := filepath.Join(t.TempDir(), "flows.json")
		runBin(t, sensor, "-r", testenv.Pcap(t, rel), "--sensor-id", "json<&>", "--flows-out", out)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		n := 0
		for sc.Scan() {
			var e flow.ECS
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: line %d: %v", rel, n+1, err)
			}
			want, err := json.Marshal((*plain)(&e))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sc.Bytes(), want) {
				t.Fatalf("%s: line %d:\n got %s\nwant %s", rel, n+1, sc.Bytes(), want)
			}
			for _, k := range []string{`"dns":`, `"tls":`, `"http":`, `"ssh":`, `"timeline":`, `"icmp":`, `"vlan":`, `"mac":`, `"ipv6"`} {
				if strings.Contains(sc.Text(), k) {
					seen[k]++
				}
			}
			n++
		}
		f.Close()
		if err := sc.Err(); err != nil || n == 0 {
			t.Fatalf("%s: %d records, %v", rel, n, err)
		}
	}
	t.Logf("records with each part: %v", seen)
}
