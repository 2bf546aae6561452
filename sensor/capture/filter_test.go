package capture

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// builtFrames wraps a shared capture with encaptest and returns its frames.
func builtFrames(t *testing.T, k encaptest.Kind) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), string(k)+".pcap")
	if _, _, err := encaptest.File(k, testenv.Pcap(t, "zeek/wikipedia.pcap"), path); err != nil {
		t.Fatal(err)
	}
	return testenv.Frames(t, path)
}

// outerIs reports whether the decoded packet's outermost tunnel level is
// of type typ (with identifier id when hasID), taken apart or opaque
// (ARP over Geneve).
func outerIs(p *decode.Packet, typ flow.TunnelType, id uint32, hasID bool) bool {
	if p.NTunnels == 0 {
		return p.OpaqueTunnel == typ && (!hasID || p.OpaqueID == id)
	}
	return p.Tunnels[0].Type == typ && (!hasID || p.Tunnels[0].ID == id)
}

// TestCompileFilterTunnelPrimitives records what capture.filter (the
// installed libpcap through tcpdump -ddd) can select of tunnels, by
// running the compiled classic BPF over built tunnel captures and
// comparing with the decoder: Geneve by VNI and by the headers inside
// it, GRE and VXLAN by their outer protocol and port. libpcap 1.10 has
// no "vxlan" keyword (1.11 adds it), nor GRE keys, ERSPAN sessions or
// GTP-U TEIDs: decode.tunnel_filter selects those after decoding.
func TestCompileFilterTunnelPrimitives(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed")
	}
	for _, c := range []struct {
		kind encaptest.Kind
		expr string
		want func(p *decode.Packet) bool
	}{
		{encaptest.Geneve, "geneve", func(p *decode.Packet) bool { return outerIs(p, flow.TunnelGeneve, 0, false) }},
		{encaptest.Geneve, "geneve 0x123456", func(p *decode.Packet) bool { return outerIs(p, flow.TunnelGeneve, encaptest.VNI, true) }},
		{encaptest.Geneve, "geneve 7", func(*decode.Packet) bool { return false }},
		{encaptest.Geneve, "geneve and udp port 53", func(p *decode.Packet) bool {
			return outerIs(p, flow.TunnelGeneve, 0, false) && p.Tuple.Proto == flow.ProtoUDP && (p.Tuple.SrcPort == 53 || p.Tuple.DstPort == 53)
		}},
		{encaptest.GRE, "ip proto 47", func(p *decode.Packet) bool { return outerIs(p, flow.TunnelGRE, 0, false) }},
		{encaptest.VXLAN, "udp port 4789", func(p *decode.Packet) bool { return outerIs(p, flow.TunnelVXLAN, 0, false) }},
	} {
		prog, err := CompileFilter("", c.expr, LinkTypeEthernet, 65535)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		vm, err := bpf.NewVM(disassemble(t, prog))
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		kept, want := 0, 0
		for _, fr := range builtFrames(t, c.kind) {
			n, err := vm.Run(fr)
			if err != nil {
				t.Fatal(err)
			}
			var p decode.Packet
			decode.Decode(decode.LinkEthernet, fr, &p)
			if n > 0 {
				kept++
			}
			if c.want(&p) {
				want++
			}
		}
		if kept != want {
			t.Errorf("%s: capture filter %q keeps %d frames, the decoder finds %d", c.kind, c.expr, kept, want)
		}
	}
	for _, expr := range []string{"vxlan", "vxlan 5", "erspan", "gtp", "gre key 5"} {
		if _, err := CompileFilter("", expr, LinkTypeEthernet, 65535); err != nil && !errors.Is(err, ErrBadFilter) {
			t.Errorf("%q: %v, want ErrBadFilter", expr, err)
		} else if err == nil {
			t.Logf("%q compiles: this libpcap knows more than 1.10", expr)
		}
	}
}

// disassemble turns raw instructions back into bpf.Instructions for the VM.
func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	out := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		out[i] = r.Disassemble()
	}
	return out
}
