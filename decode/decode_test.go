package decode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
)

// shape groups packets by how they decode, to pick a few distinct real
// packets for the tests that do not need every packet.
type shape struct {
	link       LinkType
	vlans      uint8
	mpls       uint8
	family     uint8
	proto      uint8
	ether      uint16
	frag       bool
	laterFrag  bool
	ext        bool // IPv6 extension headers or IPv4 options present
	hasPayload bool
}

type sample struct {
	from string // capture path and frame number
	pk   capPacket
}

// distinctSamples returns the first cleanly decoded packet of each shape
// over all shared captures.
func distinctSamples(tb testing.TB) []sample {
	tb.Helper()
	seen := map[shape]bool{}
	var out []sample
	var p Packet
	for _, c := range allCaptures(tb) {
		for i, pk := range c.packets {
			Decode(pk.link, pk.data, &p)
			if p.Status&(StatusTruncated|StatusMalformed) != 0 {
				continue
			}
			minHdr := 20
			if p.Tuple.Family == 6 {
				minHdr = 40
			}
			s := shape{pk.link, p.VLANTags, p.MPLSLabels, p.Tuple.Family, p.Proto, p.EtherType,
				p.IsFragment, p.FragOffset != 0, p.HasTuple && p.L4Offset-p.L3Offset != minHdr, p.PayloadLen > 0}
			if seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, sample{fmt.Sprintf("%s#%d", c.path, i+1), pk})
		}
	}
	return out
}

// TestTruncatedPrefixes decodes every prefix of distinct real packets:
// no panic, StatusTruncated whenever the cut falls inside the headers the
// decoder reads, and the full decode's tuple once the headers are whole.
func TestTruncatedPrefixes(t *testing.T) {
	samples := distinctSamples(t)
	if len(samples) < 10 {
		t.Fatalf("only %d distinct packets", len(samples))
	}
	var full, p Packet
	checked := 0
	for _, s := range samples {
		Decode(s.pk.link, s.pk.data, &full)
		if full.Status&StatusUnsupported != 0 {
			// Still must not panic on any prefix.
			for n := range len(s.pk.data) {
				Decode(s.pk.link, s.pk.data[:n], &p)
			}
			continue
		}
		// headerEnd is where the headers the decoder reads end.
		headerEnd := full.PayloadOffset
		if headerEnd == 0 {
			headerEnd = full.L4Offset
		}
		if headerEnd == 0 {
			t.Errorf("%s: no header end in full decode %+v", s.from, full)
			continue
		}
		checked++
		for n := range len(s.pk.data) {
			Decode(s.pk.link, s.pk.data[:n], &p)
			if n < headerEnd {
				if p.Status&StatusTruncated == 0 {
					t.Errorf("%s cut at %d (headers end at %d): status %v, want truncated", s.from, n, headerEnd, p.Status)
				}
				// A cut inside a tunnel leaves the tuple of the level
				// reached: the full decode's tunnel at that level.
				wantSrc := full.Tuple.Src
				if p.NTunnels < full.NTunnels {
					wantSrc = full.Tunnels[p.NTunnels].Src
				}
				if p.HasTuple && p.Tuple.Src != wantSrc {
					t.Errorf("%s cut at %d: src %v differs from full decode %v", s.from, n, p.Tuple.Src, wantSrc)
				}
				if n >= full.L3Offset+40 && full.HasTuple && !p.HasTuple {
					t.Errorf("%s cut at %d: IP header complete but no tuple", s.from, n)
				}
				continue
			}
			// A tunnel whose payload is not IP (CDP over ERSPAN) is read
			// past the headers that end at headerEnd: a cut in its
			// headers also says truncated, on the same tuple.
			status := p.Status
			if full.OpaqueTunnel != 0 && full.Status&StatusTruncated == 0 {
				status &^= StatusTruncated
			}
			if status != full.Status || p.Tuple != full.Tuple || p.TCPFlags != full.TCPFlags {
				t.Errorf("%s cut at %d (headers end at %d): got %v %v, full %v %v", s.from, n, headerEnd, p.Status, p.Tuple, full.Status, full.Tuple)
			}
		}
	}
	t.Logf("%d distinct packets, %d with headers checked prefix by prefix", len(samples), checked)
}

// TestDecodeAllocs checks that Decode and Counters.Observe allocate
// nothing over every shared packet.
func TestDecodeAllocs(t *testing.T) {
	caps := allCaptures(t)
	var p Packet
	var c Counters
	n := testing.AllocsPerRun(3, func() {
		for _, cp := range caps {
			for _, pk := range cp.packets {
				Decode(pk.link, pk.data, &p)
				c.Observe(&p, pk.wireLen)
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per run over all captures", n)
	}
}

// TestUnsupportedLinkType checks that link types outside the set are
// flagged: real frames presented under a link type the decoder does not
// know (LINKTYPE_USER0) decode to StatusUnsupported and nothing else.
func TestUnsupportedLinkType(t *testing.T) {
	found := 0
	var p Packet
	for _, c := range allCaptures(t) {
		for _, pk := range c.packets {
			if pk.link != LinkEthernet {
				continue
			}
			found++
			Decode(147, pk.data, &p)
			if p.Status != StatusUnsupported || p.HasTuple || p.EtherType != 0 {
				t.Errorf("%s as link 147: %+v", c.path, p)
			}
		}
	}
	if found == 0 {
		t.Fatal("no Ethernet capture found")
	}
}

// TestNFLOG checks the NFLOG capture decodes to the IP flows tshark sees
// (the field-by-field comparison is in TestDecodeMatchesTshark).
func TestNFLOG(t *testing.T) {
	n := 0
	var p Packet
	for _, c := range allCaptures(t) {
		for _, pk := range c.packets {
			if pk.link != LinkNFLOG {
				continue
			}
			n++
			Decode(pk.link, pk.data, &p)
			if !p.HasTuple || !p.HasPorts || p.Proto != 17 {
				t.Errorf("%s: NFLOG frame not decoded to UDP: %+v", c.path, p)
			}
		}
	}
	if n == 0 {
		t.Fatal("no NFLOG capture found")
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{
		0: "ok", StatusTruncated: "truncated", StatusTruncated | StatusUnsupported: "truncated|unsupported",
		StatusMalformed | 0x80: "malformed|unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

// TestWriteFuzzSeeds writes one seed per distinct real packet shape into
// testdata/fuzz/FuzzDecode, so the fuzzer has real seeds even where the
// shared captures are absent. Run with TAPIR_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("TAPIR_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set TAPIR_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, link LinkType, data []byte) {
		body := fmt.Sprintf("go test fuzz v1\nuint16(%d)\n[]byte(%q)\n", link, data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range distinctSamples(t) {
		write(fmt.Sprintf("real-%03d-%s", i, strings.NewReplacer("/", "_", "#", "_").Replace(s.from)), s.pk.link, s.pk.data)
	}
	for i, s := range tunnelSeeds(t) {
		write(fmt.Sprintf("tunnel-%03d-%s", i, strings.NewReplacer("/", "_", "#", "_").Replace(s.from)), s.pk.link, s.pk.data)
	}
}

// tunnelSeeds wraps a few distinct real packets (TCP, UDP and ICMPv6
// over IPv4 and IPv6, fragments) in every tunnel encaptest builds.
func tunnelSeeds(tb testing.TB) []sample {
	type kind struct {
		family, proto uint8
		frag          bool
	}
	seen := map[kind]bool{}
	var picked []sample
	var p Packet
	for _, s := range distinctSamples(tb) {
		Decode(s.pk.link, s.pk.data, &p)
		k := kind{p.Tuple.Family, p.Proto, p.IsFragment}
		if s.pk.link != LinkEthernet || p.VLANTags != 0 || p.MPLSLabels != 0 || p.NTunnels != 0 || !p.HasTuple || seen[k] ||
			p.Proto != flow.ProtoTCP && p.Proto != flow.ProtoUDP && p.Proto != flow.ProtoICMPv6 {
			continue
		}
		seen[k] = true
		if picked = append(picked, s); len(picked) == 5 {
			break
		}
	}
	var out []sample
	for _, k := range encaptest.Kinds {
		for _, s := range picked {
			if fr, ok := encaptest.Wrap(k, s.pk.data, 1); ok {
				out = append(out, sample{string(k) + "-" + s.from, capPacket{link: LinkEthernet, data: fr, wireLen: len(fr)}})
			}
		}
	}
	return out
}
