package tsharkoracle

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestFragmentPortsMatchReassembly checks the fragment mapping of Frames
// (reassembly off, ports carried over from the first fragment) against
// tshark's own reassembly (two passes, reassembly on): every fragment of a
// datagram tshark reassembles carries the ports tshark shows on the
// reassembled datagram.
func TestFragmentPortsMatchReassembly(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	checked := 0
	for _, rel := range FragmentCaptures {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			frames, ok := Frames(t, path)
			if !ok {
				t.Fatal("tshark failed")
			}
			out, err := exec.Command(tshark, "-n", "-2", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f",
				"-e", "frame.number", "-e", "ip.reassembled_in", "-e", "ipv6.reassembled.in",
				"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport").Output()
			if err != nil {
				t.Fatalf("tshark with reassembly: %v", err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(frames) {
				t.Fatalf("tshark printed %d frames with reassembly, %d without", len(lines), len(frames))
			}
			ports := map[int][2]uint16{} // reassembling frame -> datagram ports
			in := map[int]int{}          // fragment -> reassembling frame
			for _, line := range lines {
				f := strings.Split(line, "\t")
				for len(f) < 7 {
					f = append(f, "")
				}
				n := atoi(f[0])
				if r := atoi(f[1] + f[2]); r != 0 {
					in[n] = r
					in[r] = r
				}
				switch {
				case f[3] != "":
					ports[n] = [2]uint16{uint16(atoi(f[3])), uint16(atoi(f[4]))}
				case f[5] != "":
					ports[n] = [2]uint16{uint16(atoi(f[5])), uint16(atoi(f[6]))}
				}
			}
			for i := range frames {
				fr := &frames[i]
				r, ok := in[fr.Number]
				if !ok {
					continue
				}
				want, ok := ports[r]
				if !ok || !flow.HasPorts(fr.Tuple.Proto) {
					t.Errorf("frame %d: reassembled in %d (ports %v), oracle tuple %s", fr.Number, r, want, fr.Tuple)
					continue
				}
				if !fr.Fragment || fr.Tuple.SrcPort != want[0] || fr.Tuple.DstPort != want[1] {
					t.Errorf("frame %d: oracle %s (fragment %v), tshark reassembled ports %d -> %d", fr.Number, fr.Tuple, fr.Fragment, want[0], want[1])
				}
				checked++
			}
		})
	}
	if checked == 0 {
		t.Error("no fragment of a reassembled datagram checked")
	}
	t.Logf("checked %d fragments", checked)
}

// TestFieldIndexes keeps the field-index constants in step with fields.
func TestFieldIndexes(t *testing.T) {
	if len(fields) != nFields {
		t.Fatalf("%d fields, %d indexes", len(fields), nFields)
	}
	if fields[fIP6RoutingNxt] != "ipv6.routing.nxt" || fields[fEpoch] != "frame.time_epoch" {
		t.Fatal("field indexes out of order")
	}
}

func TestLines(t *testing.T) {
	path := testenv.Pcap(t, "zeek/get.pcap")
	all := Lines(t, "-n", "-r", path, "-T", "fields", "-e", "frame.number")
	if len(all) == 0 || all[0] != "1" || all[len(all)-1] != fmt.Sprint(len(all)) {
		t.Fatalf("frame numbers %q: want 1..n, one a line", all)
	}
	if got := Lines(t, "-n", "-r", path, "-Y", "frame.number == 0"); got != nil {
		t.Errorf("no frame selected: got %q, want nil", got)
	}
}
