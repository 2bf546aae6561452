package tsharkoracle

import (
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestTunnelFramesEqualOriginal wraps shared captures in every tunnel
// encaptest builds and checks that the oracle gives each frame of the
// tunnel capture the tuple it gives the same frame of the original: the
// oracle follows tunnels to the inner connection, as the sensor keys it
// (fragments included: the IPv6 capture's non-first fragments get their
// datagram's ports).
func TestTunnelFramesEqualOriginal(t *testing.T) {
	testenv.Tool(t, "tshark")
	cases := map[string][]encaptest.Kind{
		"community-id-spec/combined.pcap.gz": encaptest.Kinds,
		"zeek/ipv6-fragmented-dns.pcap":      {encaptest.IPIP6, encaptest.VXLAN, encaptest.GTPUInV6},
	}
	dir := t.TempDir()
	for rel, kinds := range cases {
		orig := testenv.Pcap(t, rel)
		want, ok := Frames(t, testenv.Plain(t, orig))
		if !ok {
			t.Fatalf("%s: tshark failed", rel)
		}
		for _, k := range kinds {
			t.Run(filepath.Base(rel)+"/"+string(k), func(t *testing.T) {
				path := filepath.Join(dir, string(k)+filepath.Base(rel)+".pcap")
				if _, _, err := encaptest.File(k, orig, path); err != nil {
					t.Fatal(err)
				}
				got, ok := Frames(t, path)
				if !ok || len(got) != len(want) {
					t.Fatalf("tshark: ok %v, %d frames of %d", ok, len(got), len(want))
				}
				for i := range want {
					if want[i].IP && (!got[i].IP || got[i].Tuple != want[i].Tuple || got[i].NonFirst != want[i].NonFirst) {
						t.Errorf("frame %d: %s (IP %v), original %s", i+1, got[i].Tuple, got[i].IP, want[i].Tuple)
					}
				}
			})
		}
	}
}
