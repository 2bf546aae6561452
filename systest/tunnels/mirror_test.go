package tunnels

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// mirrorOriginal is the shared capture the mirror tests wrap: a LAN
// trace with TCP, UDP, ICMP and non-IP frames over both IP versions.
const mirrorOriginal = "zeek/wikipedia.pcap"

// runMirrorSensor reads path with tapir-sensor --mirror mirror and
// returns its final flow records.
func runMirrorSensor(t *testing.T, path, mirror string) []ecsFlow {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flows.json")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sensor(t), "-r", path, "--mirror", mirror, "--flows-out", out, "--sensor-id", "mirror",
		"--idle-timeout", "87600h", "--active-timeout", "87600h")
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor -r %s --mirror %s: %v: %s", path, mirror, err, e2etest.LastLines(string(log), 5))
	}
	return readFlows(t, out)
}

// readFlows reads the final records of a --flows-out file.
func readFlows(t *testing.T, path string) []ecsFlow {
	t.Helper()
	var recs []ecsFlow
	for _, l := range bytes.Split(readFile(t, path), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var e ecsFlow
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("flows output: %v", err)
		}
		if e.Tapir.Final {
			recs = append(recs, e)
		}
	}
	return recs
}

// mirrorFlow is what a flow is compared on: its packets each way and
// its Community ID.
type mirrorFlow struct {
	sums flowSums
	cid  string
}

// mirrorFlows returns the flows of recs by tuple (inner VLAN slot set to
// 0; link-layer pseudo flows by MAC addresses), the inner_vlan slots of
// each IP flow, and the number of flows on encaptest's tunnel endpoints.
func mirrorFlows(t *testing.T, recs []ecsFlow) (flows map[flowKey]mirrorFlow, slots map[flowKey][]uint16, outer int) {
	t.Helper()
	flows, slots = map[flowKey]mirrorFlow{}, map[flowKey][]uint16{}
	for _, r := range recs {
		src, err1 := netip.ParseAddr(r.Source.IP)
		dst, err2 := netip.ParseAddr(r.Destination.IP)
		if err1 != nil || err2 != nil {
			// link-layer pseudo flows, keyed on their MAC addresses
			k := flowKey{proto: "link " + r.Source.MAC + " " + r.Destination.MAC, vlan: r.Tapir.VLAN}
			o := flows[k]
			flows[k] = mirrorFlow{sums: flowSums{o.sums.a + r.Source.Packets, o.sums.b + r.Destination.Packets}}
			continue
		}
		if isOuter(src) || isOuter(dst) {
			outer++
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
		k := flowKey{r.Network.IANANumber, a, b, r.Tapir.VLAN, 0}
		slots[k] = append(slots[k], r.Tapir.InnerVLAN)
		o := flows[k]
		if o.cid != "" && o.cid != r.Network.CommunityID {
			t.Errorf("%v: Community IDs %s and %s", k, o.cid, r.Network.CommunityID)
		}
		flows[k] = mirrorFlow{flowSums{o.sums.a + s.a, o.sums.b + s.b}, r.Network.CommunityID}
	}
	return flows, slots, outer
}

// diffFlows reports the differences between got and want (at most 10)
// and returns how many there are.
func diffFlows[V comparable](t *testing.T, got, want map[flowKey]V) int {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			diffs = append(diffs, fmt.Sprintf("%v: %v, original %v (present %v)", k, g, w, ok))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v: %v, not in the original", k, g))
		}
	}
	sort.Strings(diffs)
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("... %d more", len(diffs)-10)
			break
		}
		t.Error(d)
	}
	return len(diffs)
}

// TestMirrorModeFlowsEqualOriginal: a shared capture wrapped in a mirror
// encapsulation (VXLAN as AWS and Azure send it, ERSPAN II and III as a
// remote SPAN does), read with --mirror, gives the original's flows:
// same tuples, packets each way and Community IDs; no flow on the mirror
// tunnel's own addresses; the mirror's VNI or session ID in the
// inner_vlan key slot and in the record's mirror level.
func TestMirrorModeFlowsEqualOriginal(t *testing.T) {
	orig := testenv.Pcap(t, mirrorOriginal)
	want, _, _ := mirrorFlows(t, runSensor(t, orig, 0))
	if len(want) == 0 {
		t.Fatal("no IP flow in the original")
	}
	for _, c := range []struct {
		kind   encaptest.Kind
		mirror string
		id     uint32
	}{
		{encaptest.VXLAN, "vxlan", encaptest.VNI},
		{encaptest.VXLAN6, "vxlan:4789", encaptest.VNI},
		{encaptest.ERSPAN2, "erspan", encaptest.SessionID},
		{encaptest.ERSPAN3, "erspan", encaptest.SessionID},
	} {
		t.Run(string(c.kind), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mirror.pcap")
			if _, _, err := encaptest.File(c.kind, orig, path); err != nil {
				t.Fatal(err)
			}
			recs := runMirrorSensor(t, path, c.mirror)
			got, slots, outer := mirrorFlows(t, recs)
			if outer != 0 {
				t.Errorf("%d flows on the mirror tunnel's addresses", outer)
			}
			diffFlows(t, got, want)
			for k, s := range slots {
				if len(s) != 1 || s[0] != decode.MirrorKey(c.id) {
					t.Errorf("%v: inner_vlan slots %v, want [%d]", k, s, decode.MirrorKey(c.id))
				}
			}
			checkMirrorLevels(t, recs, c.id)
			t.Logf("%d flows equal the original's", len(want))
		})
	}
}

// checkMirrorLevels checks that every flow's first tunnel level is the
// mirror, flagged, with identifier id.
func checkMirrorLevels(t *testing.T, recs []ecsFlow, id uint32) {
	t.Helper()
	bad := 0
	for _, r := range recs {
		tl := r.Tapir.Tunnels
		if len(tl) == 0 || !tl[0].Mirror || levelID(tl[0]) != id {
			if bad++; bad <= 3 {
				t.Errorf("%s%s -> %s%s: tunnels %+v, want a mirror level with id %d first", r.Source.IP, r.Source.MAC, r.Destination.IP, r.Destination.MAC, tl, id)
			}
		}
	}
}

// levelID returns a level's VNI or session ID.
func levelID(l ecsTunnel) uint32 {
	switch {
	case l.VNI != nil:
		return *l.VNI
	case l.SessionID != nil:
		return *l.SessionID
	}
	return 1 << 31
}

// setVNI rewrites the VNI of every VXLAN-over-IPv4 frame of path (as
// encaptest builds them: untagged, 20-byte IPv4 header, UDP to 4789).
func setVNI(t *testing.T, in, out string, vni uint32) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	w := pcapgo.NewWriter(o)
	if err := w.WriteFileHeader(262144, r.LinkType()); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(data) >= 50 && binary.BigEndian.Uint16(data[12:]) == 0x0800 && data[23] == 17 && binary.BigEndian.Uint16(data[36:]) == 4789 {
			binary.BigEndian.PutUint32(data[46:], vni<<8)
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMirrorSourcesStayApart: the same traffic mirrored by two sources
// (VNIs 7 and 9, captures merged with mergecap) gives two flows per
// inner connection, told apart by the inner_vlan key slot and the mirror
// level's VNI, each equal to the original's flow.
func TestMirrorSourcesStayApart(t *testing.T) {
	checkMirrorSourcesApart(t, []uint32{7, 9})
}

// TestMirrorSourcesLargeVNIsStayApart: VNIs that the 16-bit mirror key
// folds together (0 and 61440, 4095 and 16777215: 4096 + VNI mod 61440)
// and the edges 61439, 61440 and 16777215 (the largest 24-bit VNI) stay
// apart: one flow per inner connection and VNI, each equal to the
// original's. Before the whole VNI joined the flow key, 0 and 61440 (and
// 4095 and 16777215) made one flow with twice the packets.
func TestMirrorSourcesLargeVNIsStayApart(t *testing.T) {
	checkMirrorSourcesApart(t, []uint32{0, 4095, 61439, 61440, 16777215})
}

// checkMirrorSourcesApart wraps the shared capture in VXLAN once per
// VNI, merges the copies with mergecap, reads the result with --mirror
// vxlan and checks each VNI's flows equal the original's, with that
// VNI's mirror key in inner_vlan and its mirror level.
func checkMirrorSourcesApart(t *testing.T, vnis []uint32) {
	t.Helper()
	if _, err := exec.LookPath("mergecap"); err != nil {
		t.Skip("mergecap not installed")
	}
	orig := testenv.Pcap(t, mirrorOriginal)
	want, _, _ := mirrorFlows(t, runSensor(t, orig, 0))
	dir := t.TempDir()
	wrapped := filepath.Join(dir, "vxlan.pcap")
	if _, _, err := encaptest.File(encaptest.VXLAN, orig, wrapped); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged.pcap")
	args := []string{"-F", "pcap", "-w", merged}
	for _, vni := range vnis {
		p := filepath.Join(dir, fmt.Sprintf("vni%d.pcap", vni))
		setVNI(t, wrapped, p, vni)
		args = append(args, p)
	}
	if out, err := exec.Command("mergecap", args...).CombinedOutput(); err != nil {
		t.Fatalf("mergecap: %v: %s", err, out)
	}
	recs := runMirrorSensor(t, merged, "vxlan")
	perVNI := map[uint32][]ecsFlow{}
	for _, r := range recs {
		if tl := r.Tapir.Tunnels; len(tl) > 0 && tl[0].Mirror {
			perVNI[levelID(tl[0])] = append(perVNI[levelID(tl[0])], r)
		} else {
			t.Errorf("%s%s -> %s%s: no mirror level", r.Source.IP, r.Source.MAC, r.Destination.IP, r.Destination.MAC)
		}
	}
	for _, vni := range vnis {
		got, slots, outer := mirrorFlows(t, perVNI[vni])
		if outer != 0 {
			t.Errorf("VNI %d: %d flows on the mirror tunnel's addresses", vni, outer)
		}
		if n := diffFlows(t, got, want); n > 0 {
			t.Errorf("VNI %d: %d flows differ from the original's", vni, n)
		}
		for k, s := range slots {
			if len(s) != 1 || s[0] != decode.MirrorKey(vni) {
				t.Errorf("VNI %d: %v: inner_vlan slots %v, want [%d]", vni, k, s, decode.MirrorKey(vni))
			}
		}
	}
	if len(perVNI) != len(vnis) {
		t.Errorf("mirror VNIs %v, want %v", keys(perVNI), vnis)
	}
	t.Logf("%d inner connections, %d flows each", len(want), len(vnis))
}

// keys returns m's keys.
func keys(m map[uint32][]ecsFlow) []uint32 {
	var out []uint32
	for k := range m {
		out = append(out, k)
	}
	return out
}
