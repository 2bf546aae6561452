// Package tunnels tests tunnel decapsulation through the tapir-sensor
// binary: on every shared capture holding tunnels, and on shared captures
// wrapped in every tunnel internal/encaptest builds, the sensor's flows
// (--flows-out) carry every Community ID tshark computes (seed 0 and a
// non-zero seed), the published Zeek expectation for zeek/vxlan.pcap,
// and the inner flows of a built capture equal the original's flows.
package tunnels

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// sharedTunnelCaptures are the shared captures that hold tunnels
// (SOURCES.md: "Tunnels").
var sharedTunnelCaptures = []string{"arkime/gre-erspan.pcap", "arkime/ipv6-in-ipv4.pcap", "zeek/vxlan.pcap"}

// builtOriginals are the shared captures wrapped in every tunnel: every
// Community ID spec protocol, IPv4 and IPv6 fragments, a LAN trace with
// DNS, HTTP and mDNS over both IP versions.
var builtOriginals = []string{
	"community-id-spec/combined.pcap.gz", "zeek/ipv6-fragmented-dns.pcap", "zeek/fragmented-4.pcap", "zeek/wikipedia.pcap",
}

// sensor returns the built tapir-sensor.
func sensor(t *testing.T) string {
	t.Helper()
	built.Need(t)
	return built.Sensor
}

// ecsFlow is the part of a flow line the tests read.
type ecsFlow struct {
	Network struct {
		CommunityID string `json:"community_id"`
		IANANumber  string `json:"iana_number"`
	} `json:"network"`
	Source, Destination struct {
		IP      string `json:"ip"`
		MAC     string `json:"mac"`
		Port    uint16 `json:"port"`
		Packets uint64 `json:"packets"`
	}
	Tapir struct {
		Final     bool   `json:"final"`
		VLAN      uint16 `json:"vlan"`
		InnerVLAN uint16 `json:"inner_vlan"`
		ICMP      *struct {
			Type, Code uint16
		} `json:"icmp"`
		Tunnels []ecsTunnel `json:"tunnels"`
	} `json:"tapir"`
}

// ecsTunnel is one level of a flow line's tapir.tunnels.
type ecsTunnel struct {
	Type                string `json:"type"`
	Source, Destination struct {
		IP   string `json:"ip"`
		Port uint16 `json:"port"`
	}
	IANANumber string  `json:"iana_number"`
	VNI        *uint32 `json:"vni"`
	Key        *uint32 `json:"key"`
	SessionID  *uint32 `json:"session_id"`
	TEID       *uint32 `json:"teid"`
	Mirror     bool    `json:"mirror"`
}

// runSensor reads path with tapir-sensor (flows end only at the end of
// the file) and returns its final flow records.
func runSensor(t *testing.T, path string, seed int) []ecsFlow {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flows.json")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sensor(t), "-r", path, "--flows-out", out, "--sensor-id", "tunnels",
		"--community-seed", strconv.Itoa(seed), "--idle-timeout", "87600h", "--active-timeout", "87600h")
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor -r %s: %v: %s", path, err, e2etest.LastLines(string(log), 5))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var recs []ecsFlow
	for _, e := range e2etest.JSONLines[ecsFlow](t, b) {
		if e.Tapir.Final {
			recs = append(recs, e)
		}
	}
	return recs
}

// tsharkIDs returns tshark's Community ID of every frame of path ("" for
// frames it gives none), IP reassembly off as the sensor sees fragments.
func tsharkIDs(t *testing.T, path string, seed int) []string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-n", "-r", path, "--enable-protocol", "communityid",
		"-o", fmt.Sprintf("communityid.seed:%d", seed), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-e", "communityid").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// asideIDs returns, per frame of path, the Community ID tshark gives it
// that no flow carries by design, or "": a non-first IP fragment's
// IP-only ID (the sensor puts the fragment in its datagram's flow), and a
// tunnelled packet without an inner transport header (tshark's artefact,
// see tsharkoracle.TunnelQuirkID).
func asideIDs(t *testing.T, path string, seed int) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var p decode.Packet
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		decode.Decode(decode.LinkType(r.LinkType()), data, &p)
		noTransport := p.FragOffset != 0 || !p.HasPorts ||
			!(flow.HasPorts(p.Proto) || p.Proto == flow.ProtoICMP || p.Proto == flow.ProtoICMPv6)
		id, ok := tsharkoracle.TunnelQuirkID(uint16(seed), p.Tuple, p.Tunnels[:p.NTunnels], noTransport)
		if !ok && p.FragOffset != 0 {
			id = tsharkoracle.IPOnlyCommunityID(uint16(seed), p.Tuple, p.Proto)
		}
		out = append(out, id)
	}
}

// checkIDs requires every Community ID tshark gives a frame of path to be
// the ID of one of the sensor's flows of path, with the given seed. It
// returns how many distinct IDs were checked.
func checkIDs(t *testing.T, path string, seed int) int {
	t.Helper()
	have := map[string]bool{}
	for _, r := range runSensor(t, path, seed) {
		have[r.Network.CommunityID] = true
	}
	aside := asideIDs(t, path, seed)
	want := map[string]int{} // ID -> first frame
	set := 0
	for i, id := range tsharkIDs(t, path, seed) {
		switch {
		case id == "":
		case i < len(aside) && aside[i] == id && !have[id]:
			set++
		case want[id] == 0:
			want[id] = i + 1
		}
	}
	for id, frame := range want {
		if !have[id] {
			t.Errorf("seed %d: tshark's %s (frame %d) is the ID of no flow of the sensor", seed, id, frame)
		}
	}
	if len(want) == 0 {
		t.Errorf("seed %d: tshark gives no Community ID", seed)
	}
	t.Logf("seed %d: %d tshark Community IDs, all the sensor's; set aside: %d frames (non-first fragments, tshark's tunnel quirk)", seed, len(want), set)
	return len(want)
}

// buildCaptures wraps builtOriginals in every tunnel kind into dir.
func buildCaptures(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, rel := range builtOriginals {
		in := testenv.Pcap(t, rel)
		for _, k := range encaptest.Kinds {
			path := filepath.Join(dir, strings.NewReplacer("/", "_", ".gz", "").Replace(rel)+"."+string(k)+".pcap")
			if _, _, err := encaptest.File(k, in, path); err != nil {
				t.Fatal(err)
			}
			out[rel] = append(out[rel], path)
		}
	}
	return out
}

// TestTunnelCommunityIDsIncludeTshark: on the shared tunnel captures and
// on the built ones, every Community ID tshark computes is the ID of a
// flow of the sensor, with seed 0 and seed 4242 (built captures: one seed
// each, alternating, to keep tshark's time down).
func TestTunnelCommunityIDsIncludeTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	for _, rel := range sharedTunnelCaptures {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			checkIDs(t, path, 0)
			checkIDs(t, path, 4242)
		})
	}
	built := buildCaptures(t, t.TempDir())
	n := 0
	for _, rel := range builtOriginals {
		for _, path := range built[rel] {
			seed := 4242 * (n % 2)
			n++
			t.Run(filepath.Base(path), func(t *testing.T) {
				checkIDs(t, path, seed)
			})
		}
	}
}

// TestZeekVXLAN: zeek/vxlan.pcap's published conn.log
// (core.tunnels.vxlan.conn.log) has the inner ICMP echo connection
// 10.0.0.1 -> 10.0.0.2 with 4 packets each way inside the VXLAN tunnel;
// the sensor reports that connection, not the tunnel, for those packets.
func TestZeekVXLAN(t *testing.T) {
	log, err := os.ReadFile(testenv.Pcap(t, "zeek/core.tunnels.vxlan.conn.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "10.0.0.1\t8\t10.0.0.2\t0\ticmp\t-\t3.004616\t224\t224\tOTH\tT\tT\t0\tX\t4\t336\t4\t336") {
		t.Fatal("the Zeek baseline does not hold the inner ICMP connection this test expects")
	}
	var found bool
	for _, r := range runSensor(t, testenv.Pcap(t, "zeek/vxlan.pcap"), 0) {
		if r.Network.IANANumber != "1" {
			continue
		}
		found = true
		if r.Source.IP != "10.0.0.1" || r.Destination.IP != "10.0.0.2" || r.Source.Packets != 4 || r.Destination.Packets != 4 {
			t.Errorf("inner ICMP flow %s -> %s, %d/%d packets; Zeek: 10.0.0.1 -> 10.0.0.2, 4/4",
				r.Source.IP, r.Destination.IP, r.Source.Packets, r.Destination.Packets)
		}
	}
	if !found {
		t.Error("no ICMP flow: the VXLAN tunnel was not taken apart")
	}
}

// flowKey is a direction-free flow identity with VLANs, as the sensor
// keys flows.
type flowKey struct {
	proto       string
	a, b        netip.AddrPort
	vlan, vlan2 uint16
}

// flowSums are a flow's packets by direction (a's first).
type flowSums struct{ a, b uint64 }

// ipFlows returns the IP flows of records, leaving out the tunnel's own
// traffic (between encaptest's tunnel endpoints).
func ipFlows(recs []ecsFlow) map[flowKey]flowSums {
	out := map[flowKey]flowSums{}
	for _, r := range recs {
		src, err1 := netip.ParseAddr(r.Source.IP)
		dst, err2 := netip.ParseAddr(r.Destination.IP)
		if err1 != nil || err2 != nil {
			continue // link-layer pseudo flows
		}
		if (src == encaptest.OuterSrc4 || src == encaptest.OuterDst4 || src == encaptest.OuterSrc6 || src == encaptest.OuterDst6) &&
			(dst == encaptest.OuterSrc4 || dst == encaptest.OuterDst4 || dst == encaptest.OuterSrc6 || dst == encaptest.OuterDst6) {
			continue
		}
		sp, dp := r.Source.Port, r.Destination.Port
		if r.Tapir.ICMP != nil {
			sp, dp = r.Tapir.ICMP.Type, r.Tapir.ICMP.Code
		}
		a, b := netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
		s := flowSums{r.Source.Packets, r.Destination.Packets}
		if b.Compare(a) < 0 {
			a, b, s = b, a, flowSums{s.b, s.a}
		}
		k := flowKey{r.Network.IANANumber, a, b, r.Tapir.VLAN, r.Tapir.InnerVLAN}
		o := out[k]
		out[k] = flowSums{o.a + s.a, o.b + s.b}
	}
	return out
}

// TestBuiltTunnelsInnerFlowsEqualOriginal: the sensor's flows of a
// shared capture wrapped in any tunnel, the tunnel's own traffic set
// aside, are the flows of the original capture: same tuples, same packets
// each way.
func TestBuiltTunnelsInnerFlowsEqualOriginal(t *testing.T) {
	built := buildCaptures(t, t.TempDir())
	for _, rel := range builtOriginals {
		want := ipFlows(runSensor(t, testenv.Pcap(t, rel), 0))
		if len(want) == 0 {
			t.Fatalf("%s: no IP flow", rel)
		}
		for _, path := range built[rel] {
			t.Run(filepath.Base(path), func(t *testing.T) {
				got := ipFlows(runSensor(t, path, 0))
				n := diffFlows(t, got, want)
				if n == 0 {
					t.Logf("%d inner flows equal the original's", len(want))
				}
			})
		}
	}
}
