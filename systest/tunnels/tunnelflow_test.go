package tunnels

import (
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

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// tunnelFlowLine is what the tunnel flow tests read of a final flow
// line.
type tunnelFlowLine struct {
	Network struct {
		CommunityID string `json:"community_id"`
		IANANumber  string `json:"iana_number"`
		Packets     uint64 `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Source, Destination struct {
		IP   string `json:"ip"`
		Port uint16 `json:"port"`
	}
	Tapir struct {
		Final      bool        `json:"final"`
		TunnelFlow bool        `json:"tunnel_flow"`
		Tunnels    []ecsTunnel `json:"tunnels"`
		Source     storedCount `json:"source"`
		Dst        storedCount `json:"destination"`
	} `json:"tapir"`
}

// storedCount is tapir.source / tapir.destination's stored packets.
type storedCount struct {
	StoredPackets uint64 `json:"stored_packets"`
}

// key is the line's direction-free 5-tuple.
func (l *tunnelFlowLine) key() string {
	a := l.Source.IP + ":" + strconv.Itoa(int(l.Source.Port))
	b := l.Destination.IP + ":" + strconv.Itoa(int(l.Destination.Port))
	if b < a {
		a, b = b, a
	}
	return l.Network.IANANumber + " " + a + " " + b
}

// sensorRun reads path with tapir-sensor, flows ending only at the end
// of the file, and returns its final flow lines and the packets its
// --blocks-out directory holds.
func sensorRun(t *testing.T, path string, seed int) (recs []tunnelFlowLine, stored int) {
	t.Helper()
	dir := t.TempDir()
	out, blocks := filepath.Join(dir, "flows.json"), filepath.Join(dir, "blocks")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sensor(t), "-r", path, "--flows-out", out, "--blocks-out", blocks, "--sensor-id", "tunnelflow",
		"--community-seed", strconv.Itoa(seed), "--idle-timeout", "87600h", "--active-timeout", "87600h")
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor -r %s: %v: %s", path, err, e2etest.LastLines(string(log), 5))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range e2etest.JSONLines[tunnelFlowLine](t, b) {
		if l.Tapir.Final {
			recs = append(recs, l)
		}
	}
	return recs, storedPackets(t, blocks)
}

// storedPackets counts the packets in a --blocks-out directory.
func storedPackets(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	r := block.DirReader{Dir: dir}
	_, err := r.Read(func(_ block.Meta, b *block.Block) error {
		pr := b.Reader()
		for {
			if _, _, _, err := pr.Next(); err != nil {
				return nil
			}
			n++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// outerSum is tshark's count of the frames on one outer 5-tuple, and
// the tuple.
type outerSum struct {
	packets, bytes uint64
	tuple          flow.Tuple
}

// tsharkOuterSums sums tshark's frames matching filter by their
// outermost IP header's 5-tuple (UDP ports for a UDP tunnel), keyed as
// tunnelFlowLine.key.
func tsharkOuterSums(t *testing.T, path, filter string) map[string]*outerSum {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-n", "-r", path, "-Y", filter, "-T", "fields", "-E", "separator=\t",
		"-E", "occurrence=f", "-e", "frame.len", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto",
		"-e", "udp.srcport", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	sums := map[string]*outerSum{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 6 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		proto, _ := strconv.Atoi(f[3])
		src, dst := netip.MustParseAddr(f[1]), netip.MustParseAddr(f[2])
		var tup flow.Tuple
		tup.Src, tup.Family = flow.AddrFromNetip(src)
		tup.Dst, _ = flow.AddrFromNetip(dst)
		tup.Proto = uint8(proto)
		if proto == flow.ProtoUDP {
			sp, _ := strconv.Atoi(f[4])
			dp, _ := strconv.Atoi(f[5])
			tup.SrcPort, tup.DstPort = uint16(sp), uint16(dp)
		}
		l := tunnelFlowLine{}
		l.Network.IANANumber = f[3]
		l.Source.IP, l.Source.Port, l.Destination.IP, l.Destination.Port = f[1], tup.SrcPort, f[2], tup.DstPort
		k := l.key()
		if sums[k] == nil {
			sums[k] = &outerSum{tuple: tup}
		}
		sums[k].packets++
		sums[k].bytes += uint64(n)
	}
	return sums
}

// tunnelFlows returns the tunnel flow lines by 5-tuple, failing on a
// tuple with two.
func tunnelFlows(t *testing.T, recs []tunnelFlowLine) map[string]tunnelFlowLine {
	t.Helper()
	out := map[string]tunnelFlowLine{}
	for _, r := range recs {
		if !r.Tapir.TunnelFlow {
			continue
		}
		if _, dup := out[r.key()]; dup {
			t.Errorf("two tunnel flows on %s", r.key())
		}
		out[r.key()] = r
	}
	return out
}

// checkTunnelFlows compares the tunnel flows of recs with tshark's sums
// per outer 5-tuple: one flow per tuple, packets and bytes as on the
// wire, the Community ID of the outer tuple (computed with the same
// seed from tshark's fields), one chain level of the given type, and
// stored packets only for frames the decoder could not take apart
// (wantStored, by tuple: ARP over VXLAN stays on the tunnel's tuple).
func checkTunnelFlows(t *testing.T, recs []tunnelFlowLine, want, wantStored map[string]*outerSum, typ string, seed uint16) {
	t.Helper()
	got := tunnelFlows(t, recs)
	if len(got) != len(want) {
		t.Errorf("%d tunnel flows, tshark sees %d outer 5-tuples", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: no tunnel flow", k)
			continue
		case g.Network.Packets != w.packets || g.Network.Bytes != w.bytes:
			t.Errorf("%s: tunnel flow %d packets %d bytes, tshark %d packets %d bytes", k, g.Network.Packets, g.Network.Bytes, w.packets, w.bytes)
		}
		if cid := flow.CommunityID(seed, w.tuple); g.Network.CommunityID != cid {
			t.Errorf("%s: community ID %s, the outer tuple's is %s", k, g.Network.CommunityID, cid)
		}
		if len(g.Tapir.Tunnels) != 1 || g.Tapir.Tunnels[0].Type != typ {
			t.Errorf("%s: chain %+v, want one %s level", k, g.Tapir.Tunnels, typ)
		}
		var opaque uint64
		if o := wantStored[k]; o != nil {
			opaque = o.packets
		}
		if n := g.Tapir.Source.StoredPackets + g.Tapir.Dst.StoredPackets; n != opaque {
			t.Errorf("%s: the tunnel flow stored %d packets, want %d (frames not taken apart)", k, n, opaque)
		}
	}
}

// pcapPackets counts the packets of a capture with tshark.
func pcapPackets(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-n", "-r", path, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	return strings.Count(string(out), "\n")
}

// TestTunnelFlowOnOuterTuple: a shared capture wrapped in VXLAN (and in
// VXLAN inside GRE, whose outermost level is the GRE) gives exactly one
// tunnel flow per outer 5-tuple, with the packets and bytes of the
// wrapped frames as tshark counts them, the Community ID of the outer
// tuple, the outermost level as its chain, and no stored packet; the
// packets stored over the whole run are the capture's, once; the
// unwrapped capture gives no tunnel flow.
func TestTunnelFlowOnOuterTuple(t *testing.T) {
	orig := testenv.Pcap(t, "zeek/wikipedia.pcap")
	recs, stored := sensorRun(t, orig, 0)
	if n := len(tunnelFlows(t, recs)); n != 0 {
		t.Errorf("untunnelled capture: %d tunnel flows", n)
	}
	if want := pcapPackets(t, orig); stored != want {
		t.Errorf("untunnelled capture: %d packets stored, the capture has %d", stored, want)
	}
	outer := fmt.Sprintf("ip.src==%s && ip.dst==%s", encaptest.OuterSrc4, encaptest.OuterDst4)
	noInnerIP := " && count(ip)==1 && !ipv6" // the outer header is IPv4
	for _, c := range []struct {
		kind encaptest.Kind
		typ  string
		seed uint16
	}{{encaptest.VXLAN, "vxlan", 0}, {encaptest.VXLANInGR, "gre", 4242}} {
		t.Run(string(c.kind), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wikipedia."+string(c.kind)+".pcap")
			wrapped, _, err := encaptest.File(c.kind, orig, path)
			if err != nil {
				t.Fatal(err)
			}
			recs, stored := sensorRun(t, path, int(c.seed))
			want := tsharkOuterSums(t, path, outer)
			var sum uint64
			for _, w := range want {
				sum += w.packets
			}
			if len(want) != 1 || sum != uint64(wrapped) {
				t.Fatalf("tshark: %d outer tuples, %d frames; encaptest wrapped %d frames on one tuple", len(want), sum, wrapped)
			}
			checkTunnelFlows(t, recs, want, tsharkOuterSums(t, path, outer+noInnerIP), c.typ, c.seed)
			if n := pcapPackets(t, path); stored != n {
				t.Errorf("%d packets stored, the capture has %d: each packet once", stored, n)
			}
		})
	}
}

// TestSharedVXLANTunnelFlows: zeek/vxlan.pcap's two VXLAN connections
// carrying ICMP (one per direction's UDP source port) are two tunnel
// flows, counted as tshark counts their frames, and every packet is
// stored once. Its two VXLAN connections carrying only an ARP frame,
// which the decoder cannot take apart, stay ordinary flows on their
// tuple.
func TestSharedVXLANTunnelFlows(t *testing.T) {
	path := testenv.Pcap(t, "zeek/vxlan.pcap")
	recs, stored := sensorRun(t, path, 0)
	checkTunnelFlows(t, recs, tsharkOuterSums(t, path, "vxlan && count(ip)==2"), nil, "vxlan", 0)
	if n := pcapPackets(t, path); stored != n {
		t.Errorf("%d packets stored, the capture has %d: each packet once", stored, n)
	}
}
