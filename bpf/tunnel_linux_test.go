package bpf

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tapir-sensor/tapir/internal/encaptest"
)

// udpFrame is an Ethernet/IPv4/UDP frame from 10.1.0.1:40000 to
// 10.1.0.2:dport with a 64-byte payload.
func udpFrame(dport uint16) []byte {
	payload := make([]byte, 64)
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	ip := make([]byte, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{10, 1, 0, 1, 10, 1, 0, 2})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	copy(ip[20:], udp)
	eth := make([]byte, 14, 14+len(ip))
	copy(eth, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	return append(eth, ip...)
}

// cutoff loads the program with a byte budget and returns a test-run
// function (bytes kept of a frame) and a count of flow entries.
func cutoff(t *testing.T, budget uint64) (run func([]byte) uint32, flows func() int) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("TAPIR_REQUIRE_ALL") == "1" {
			t.Fatal("TAPIR_REQUIRE_ALL=1 but running eBPF needs root")
		}
		t.Skip("running eBPF needs root")
	}
	var objs TapirObjects
	if err := LoadTapirObjects(&objs, &ebpf.CollectionOptions{}); err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	if err := objs.TapirConfig.Put(uint32(0), TapirCutoffConfig{Budget: budget}); err != nil {
		t.Fatal(err)
	}
	// A socket filter's test run starts the skb at the network header
	// (the kernel pulls an Ethernet header it parses itself), while on an
	// AF_PACKET socket it starts at the link header: a throwaway Ethernet
	// header in front makes the program see the whole frame, as live.
	run = func(frame []byte) uint32 {
		t.Helper()
		data := append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, frame...)
		ret, err := objs.TapirCutoff.Run(&ebpf.RunOptions{Data: data})
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		return ret
	}
	flows = func() int {
		n := 0
		var k TapirFlowKey
		var v TapirFlowVal
		it := objs.TapirFlows.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return run, flows
}

// TestUDPTunnelsUntracked: with a one-byte budget the cut-off cuts a plain
// UDP flow after its first packet, but leaves VXLAN, Geneve, GTP-U and
// Teredo untracked (captured whole, no flow entry): userspace keys their
// packets on the inner connection, which the program does not see.
func TestUDPTunnelsUntracked(t *testing.T) {
	run, flows := cutoff(t, 1)

	plain := udpFrame(53)
	run(plain)
	if got := run(plain); got != 0 {
		t.Fatalf("plain UDP past a 1-byte budget: kept %d bytes, want 0 (the cut-off is not cutting)", got)
	}
	if n := flows(); n != 1 {
		t.Fatalf("plain UDP: %d flow entries, want 1", n)
	}
	tunnels := map[string][]byte{
		// Teredo carries IPv6 only; the program looks at the UDP port.
		"teredo (UDP 3544)": udpFrame(3544),
	}
	for _, k := range []encaptest.Kind{encaptest.VXLAN, encaptest.VXLAN6, encaptest.Geneve, encaptest.GTPU} {
		frame, ok := encaptest.Wrap(k, plain, 1)
		if !ok {
			t.Fatalf("%s: cannot wrap the frame", k)
		}
		tunnels[string(k)] = frame
	}
	for k, frame := range tunnels {
		for i := 0; i < 3; i++ {
			if got := run(frame); got != uint32(len(frame)) {
				t.Fatalf("%s packet %d: kept %d of %d bytes: the tunnel was cut on its outer connection", k, i, got, len(frame))
			}
		}
	}
	if n := flows(); n != 1 {
		t.Fatalf("after the tunnels: %d flow entries, want 1 (tunnels must stay untracked)", n)
	}
}

// TestMirrorEncapsulationsUntracked: without a VXLAN mirror port set
// (tapir_mirror_vxlan_port 0), the mirror encapsulations (VXLAN from AWS
// or Azure, ERSPAN II or III or GRE from a remote SPAN) are left
// untracked: whole, no flow entry, never cut. The program strips only a
// VXLAN mirror (TestMirrorVXLANKeyedAsUserspace); for ERSPAN and GRE
// mirrors the sensor turns the cut-off off (config.Decode.KernelCutoff).
// A VXLAN on a port other than 4789 (Linux's 8472) is tracked and cut on
// its outer connection: the sensor turns the cut-off off for
// non-standard tunnel ports too.
func TestMirrorEncapsulationsUntracked(t *testing.T) {
	run, flows := cutoff(t, 1)
	plain := udpFrame(53)
	for _, k := range []encaptest.Kind{encaptest.VXLAN, encaptest.ERSPAN2, encaptest.ERSPAN3, encaptest.GRETEB} {
		frame, ok := encaptest.Wrap(k, plain, 1)
		if !ok {
			t.Fatalf("%s: cannot wrap the frame", k)
		}
		for i := 0; i < 3; i++ {
			if got := run(frame); got != uint32(len(frame)) {
				t.Fatalf("mirror %s packet %d: kept %d of %d bytes", k, i, got, len(frame))
			}
		}
	}
	if n := flows(); n != 0 {
		t.Fatalf("after the mirror encapsulations: %d flow entries, want 0", n)
	}
	// VXLAN on UDP 8472 looks like any UDP flow to the program.
	frame, _ := encaptest.Wrap(encaptest.VXLAN, plain, 1)
	binary.BigEndian.PutUint16(frame[14+20+2:], 8472)
	binary.BigEndian.PutUint16(frame[14+20+6:], 0) // no UDP checksum
	run(frame)
	if got := run(frame); got != 0 || flows() != 1 {
		t.Fatalf("VXLAN on 8472: kept %d bytes, %d entries; want it tracked and cut (0, 1)", got, flows())
	}
}
