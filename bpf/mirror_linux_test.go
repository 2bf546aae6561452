package bpf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// loadMirror loads the program for a VXLAN mirror interface on port with
// the byte budget and returns its objects.
func loadMirror(t *testing.T, port uint16, budget uint64) *TapirObjects {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("TAPIR_REQUIRE_ALL") == "1" {
			t.Fatal("TAPIR_REQUIRE_ALL=1 but running eBPF needs root")
		}
		t.Skip("running eBPF needs root")
	}
	spec, err := LoadTapir()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables[TapirVarTapirMirrorVxlanPort].Set(port); err != nil {
		t.Fatal(err)
	}
	var objs TapirObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	if err := objs.TapirConfig.Put(uint32(0), TapirCutoffConfig{Budget: budget}); err != nil {
		t.Fatal(err)
	}
	return &objs
}

// testRun runs the program over one frame (behind a throwaway Ethernet
// header, see TestUDPTunnelsUntracked) and returns the bytes kept.
func testRun(t *testing.T, objs *TapirObjects, frame []byte) uint32 {
	t.Helper()
	data := append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, frame...)
	ret, err := objs.TapirCutoff.Run(&ebpf.RunOptions{Data: data})
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret
}

// kernelPackets returns the packets per flow key in the flow map.
func kernelPackets(t *testing.T, objs *TapirObjects) map[flow.Key]uint64 {
	t.Helper()
	out := map[flow.Key]uint64{}
	var k TapirFlowKey
	var v TapirFlowVal
	it := objs.TapirFlows.Iterate()
	for it.Next(&k, &v) {
		key := flow.Key{A: k.A, B: k.B, PortA: k.PortA, PortB: k.PortB, VLAN: k.Vlan, InnerVLAN: k.InnerVlan,
			Proto: k.Proto, Family: k.Family, Mirror: k.Mirror}
		out[key] = v.Dir[0].Packets + v.Dir[1].Packets
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mirrorFrames wraps a shared capture in VXLAN (encaptest) and returns
// its frames with the VNI set to vni.
func mirrorFrames(t *testing.T, vni uint32) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vxlan.pcap")
	if _, _, err := encaptest.File(encaptest.VXLAN, testenv.Pcap(t, "zeek/wikipedia.pcap"), path); err != nil {
		t.Fatal(err)
	}
	frames := testenv.Frames(t, path)
	for _, data := range frames {
		// encaptest's VXLAN: Ethernet, 20-byte IPv4, UDP, VNI at 4.
		if len(data) >= 50 && data[23] == 17 && binary.BigEndian.Uint16(data[36:]) == decode.PortVXLAN {
			binary.BigEndian.PutUint32(data[46:], vni<<8)
		}
	}
	return frames
}

// userspaceTracked reports whether the program should track a packet
// the decoder took apart as p: a TCP, UDP or SCTP connection right
// inside the mirror encapsulation, no VLAN tag, not a fragment, no IPv6
// extension header.
func userspaceTracked(p *decode.Packet) bool {
	if !p.HasTuple || !p.HasPorts || p.IsFragment || p.MirrorLevels != 1 || p.NTunnels != 1 || p.VLANTags != 0 {
		return false
	}
	if p.Tuple.Family == flow.FamilyIPv6 && p.L4Offset-p.L3Offset != 40 {
		return false
	}
	return flow.HasPorts(p.Proto)
}

// TestMirrorVXLANKeyedAsUserspace: on a VXLAN mirror interface the
// program strips the mirror encapsulation and keys each packet exactly
// as the decoder with Options.Mirror does (the inner connection, the
// mirror key in inner_vlan, the whole VNI in mirror), so that the
// sensor's merge finds the kernel's counters of every mirrored flow:
// a shared capture wrapped in VXLAN with VNIs 7, 61440 (whose 16-bit
// mirror key is VNI 0's) and 16777215 gives the same keys and packet
// counts on both sides.
func TestMirrorVXLANKeyedAsUserspace(t *testing.T) {
	objs := loadMirror(t, decode.PortVXLAN, 0) // budget 0: account only
	opt := decode.Options{Mirror: decode.Mirror{Type: flow.TunnelVXLAN}}
	want := map[flow.Key]uint64{}
	for _, vni := range []uint32{7, 61440, 16777215} {
		for _, fr := range mirrorFrames(t, vni) {
			if got := testRun(t, objs, fr); got != uint32(len(fr)) {
				t.Fatalf("VNI %d: kept %d of %d bytes with no budget", vni, got, len(fr))
			}
			var p decode.Packet
			opt.Decode(decode.LinkEthernet, fr, &p)
			if userspaceTracked(&p) {
				k, _ := p.Tuple.Key()
				want[k]++
			}
		}
	}
	got := kernelPackets(t, objs)
	if len(want) == 0 {
		t.Fatal("no mirrored connection the program tracks")
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v mirror %d: kernel %d packets, userspace %d", k, k.Mirror, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%v mirror %d: %d packets in the kernel under a key userspace does not use", k, k.Mirror, n)
		}
	}
	t.Logf("%d mirrored flows keyed alike", len(want))
}

// TestMirrorVXLANCut: past the budget the program cuts a mirrored flow
// (inside the mirror encapsulation), which it left whole before it knew
// the mirror.
func TestMirrorVXLANCut(t *testing.T) {
	objs := loadMirror(t, 4790, 1)
	frame, _ := encaptest.Wrap(encaptest.VXLAN, udpFrame(53), 1)
	binary.BigEndian.PutUint16(frame[14+20+2:], 4790) // the mirror's port
	binary.BigEndian.PutUint16(frame[14+20+6:], 0)    // no UDP checksum
	testRun(t, objs, frame)
	if got := testRun(t, objs, frame); got != 0 {
		t.Fatalf("second mirrored packet past a 1-byte budget: kept %d bytes, want 0", got)
	}
	keys := kernelPackets(t, objs)
	if len(keys) != 1 {
		t.Fatalf("%d flow entries, want 1", len(keys))
	}
	for k, n := range keys {
		if k.Mirror != encaptest.VNI || k.InnerVLAN != decode.MirrorKey(encaptest.VNI) || k.PortB != 53 || n != 2 {
			t.Fatalf("entry %v mirror %d inner_vlan %d: %d packets; want the inner UDP flow to 53 with VNI %d, 2 packets", k, k.Mirror, k.InnerVLAN, n, encaptest.VNI)
		}
	}
	// VXLAN on 4789 is not the mirror here: a tunnel, left whole.
	other, _ := encaptest.Wrap(encaptest.VXLAN, udpFrame(54), 1)
	for i := 0; i < 2; i++ {
		if got := testRun(t, objs, other); got != uint32(len(other)) {
			t.Fatalf("VXLAN on 4789 beside a 4790 mirror: kept %d of %d", got, len(other))
		}
	}
}
