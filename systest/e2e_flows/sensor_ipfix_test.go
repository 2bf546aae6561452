package e2eflows

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// ipfixCaptures are the captures the sensor exports to nfcapd.
var ipfixCaptures = []string{
	"zeek/wikipedia.pcap",
	"zeek/ssh.pcap",
	"zeek/5-pings.pcap",
	"community-id-spec/combined.pcap.gz",
	"suricata-verify/community-id-ipv6/input.pcap",
}

// buildSensor builds tapir-sensor once per test binary run.
func buildSensor(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tapir-sensor")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tapir-sensor")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tapir-sensor: %v: %s", err, out)
	}
	return bin
}

// ecsFlow is the part of an ECS flow line the comparison needs.
type ecsFlow struct {
	Source, Destination struct {
		IP      string `json:"ip"`
		Port    uint16 `json:"port"`
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	}
	Network struct {
		IANANumber string `json:"iana_number"`
	} `json:"network"`
	Tapir struct {
		Final bool `json:"final"`
		ICMP  *struct {
			Type, Code uint16
		} `json:"icmp"`
	} `json:"tapir"`
}

// sensorRows reads the sensor's final records of IP flows from its ECS
// JSON output and renders them as nfdump rows of biflows.
func sensorRows(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e ecsFlow
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("flows output: %v", err)
		}
		src, err1 := netip.ParseAddr(e.Source.IP)
		dst, err2 := netip.ParseAddr(e.Destination.IP)
		if !e.Tapir.Final || err1 != nil || err2 != nil {
			continue // updates, and traffic that is not IP: not exported
		}
		proto, _ := strconv.Atoi(e.Network.IANANumber)
		r := nfRow{Src: src, Dst: dst, SrcPort: e.Source.Port, DstPort: e.Destination.Port, Proto: protoName(uint8(proto)),
			Packets: e.Source.Packets, Bytes: e.Source.Bytes, RPackets: e.Destination.Packets, RBytes: e.Destination.Bytes}
		if e.Tapir.ICMP != nil {
			r.SrcPort, r.DstPort = 0, e.Tapir.ICMP.Type<<8|e.Tapir.ICMP.Code
		}
		out = append(out, r.String())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestSensorIPFIXMatchesNfdump: tapir-sensor reads each capture and
// exports its flows as IPFIX biflows to nfcapd; nfdump's reading of
// nfcapd's file equals the sensor's own flow records (its --flows-out of
// the same run), flow for flow in 5-tuple, packets and bytes of both
// directions (nfdump reads the RFC 5103 reverse counters as opkt/obyt),
// and nfcapd counts no sequence error.
func TestSensorIPFIXMatchesNfdump(t *testing.T) {
	bin := buildSensor(t)
	for _, rel := range ipfixCaptures {
		t.Run(rel, func(t *testing.T) {
			pcap := testenv.Pcap(t, rel)
			port, stop := nfcapd(t)
			flows := filepath.Join(t.TempDir(), "flows.json")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-r", pcap, "--ipfix", fmt.Sprintf("127.0.0.1:%d", port),
				"--flows-out", flows, "--sensor-id", "e2e-ipfix")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tapir-sensor: %v: %s", err, e2etest.LastLines(string(out), 5))
			}
			time.Sleep(300 * time.Millisecond) // let the datagrams land
			dir, seqErrs := stop()
			want := keysOfNfRows(nfdump(t, dir))
			got := sensorRows(t, flows)
			if len(got) == 0 {
				t.Fatal("the sensor wrote no IP flow")
			}
			diff(t, "flows", got, want)
			if seqErrs != 0 {
				t.Errorf("nfcapd counts %d sequence errors", seqErrs)
			}
			t.Logf("%d flows match nfdump; sensor: %s", len(got), e2etest.LastLines(string(out), 1))
		})
	}
}

// keysOfNfRows renders nfdump's rows as they are (biflows: one row each).
func keysOfNfRows(rows []nfRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}
