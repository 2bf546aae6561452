package decode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
)

// FuzzDecode feeds arbitrary frames under arbitrary link types to Decode.
// It is seeded with every packet of the shared captures (when present)
// and the committed corpus in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	dir := os.Getenv("TAPIR_PCAPS")
	if dir == "" {
		dir = defaultPcapsDir()
	}
	{
		if dir != "" {
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				if !strings.HasSuffix(p, ".pcap") && !strings.HasSuffix(p, ".pcap.gz") && !strings.HasSuffix(p, ".pcapng") {
					return nil
				}
				pks, _ := readCapture(p)
				for i, pk := range pks {
					// Every packet of small captures; every 500th of big ones.
					if len(pks) > 2000 && i%500 != 0 {
						continue
					}
					f.Add(uint16(pk.link), pk.data)
				}
				return nil
			})
		}
	}
	if dir != "" {
		// Every shared packet shape wrapped in every tunnel (the
		// committed corpus holds these too, as tunnel-*).
		for _, s := range tunnelSeeds(f) {
			f.Add(uint16(s.pk.link), s.pk.data)
		}
	}
	f.Fuzz(func(t *testing.T, link uint16, frame []byte) {
		var p, q Packet
		Decode(LinkType(link), frame, &p)
		checkInvariants(t, &p, frame)
		Decode(LinkType(link), frame, &q)
		if p != q {
			t.Fatalf("decode not deterministic: %+v vs %+v", p, q)
		}
		var c Counters
		c.Observe(&p, len(frame))
	})
}

func checkInvariants(t *testing.T, p *Packet, frame []byte) {
	t.Helper()
	n := len(frame)
	for _, o := range []int{p.L3Offset, p.L4Offset, p.PayloadOffset} {
		if o < 0 || o > n {
			t.Fatalf("offset %d outside frame of %d: %+v", o, n, p)
		}
	}
	if p.PayloadLen < 0 || p.PayloadOffset+p.PayloadLen > n {
		t.Fatalf("payload %d+%d outside frame of %d", p.PayloadOffset, p.PayloadLen, n)
	}
	if p.HasPorts && !p.HasTuple {
		t.Fatalf("ports without tuple: %+v", p)
	}
	if p.HasTuple {
		min := 20
		if p.Tuple.Family == 6 {
			min = 40
		} else if p.Tuple.Family != 4 {
			t.Fatalf("family %d", p.Tuple.Family)
		}
		if p.L3Offset+min > n {
			t.Fatalf("tuple from an IP header cut short: %+v", p)
		}
		if p.Proto != p.Tuple.Proto {
			t.Fatalf("proto %d vs tuple %d", p.Proto, p.Tuple.Proto)
		}
		if p.L4Offset != 0 && p.L4Offset < p.L3Offset+min {
			t.Fatalf("L4 offset %d before end of IP header at %d", p.L4Offset, p.L3Offset+min)
		}
	}
	if p.FragOffset != 0 && (!p.IsFragment || p.HasPorts) {
		t.Fatalf("later fragment with ports or not flagged: %+v", p)
	}
	checkTunnelInvariants(t, p, n)
}

// checkTunnelInvariants checks the tunnel chain: within MaxTunnels, only
// with a tuple, zero past NTunnels, the outer header before the inner
// one, and a packet stripped of a tunnel is not also that tunnel's own
// connection.
func checkTunnelInvariants(t *testing.T, p *Packet, n int) {
	t.Helper()
	if p.NTunnels > MaxTunnels {
		t.Fatalf("%d tunnel levels", p.NTunnels)
	}
	for i := int(p.NTunnels); i < MaxTunnels; i++ {
		if p.Tunnels[i] != (flow.Tunnel{}) {
			t.Fatalf("tunnel level %d set past NTunnels %d", i, p.NTunnels)
		}
	}
	if p.NTunnels == 0 {
		if p.Outer != (flow.Tuple{}) || p.OuterL3Offset != 0 {
			t.Fatalf("outer tuple without a tunnel: %+v", p)
		}
		return
	}
	if !p.HasTuple || p.OpaqueTunnel != 0 && p.NTunnels == MaxTunnels {
		t.Fatalf("tunnel chain without an inner tuple: %+v", p)
	}
	if p.OuterL3Offset >= p.L3Offset || p.OuterL3Offset < 0 || p.L3Offset > n {
		t.Fatalf("outer header at %d, inner at %d", p.OuterL3Offset, p.L3Offset)
	}
	for i := range p.Tunnels[:p.NTunnels] {
		if l := &p.Tunnels[i]; l.Type == flow.TunnelNone || l.Type >= flow.NumTunnelTypes || (l.Family != 4 && l.Family != 6) {
			t.Fatalf("tunnel level %d: %+v", i, *l)
		}
	}
}

// defaultPcapsDir finds ../shared/pcaps beside the repository root, or "".
func defaultPcapsDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "pcaps")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
