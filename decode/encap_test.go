package decode

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// encap re-frames the IP packet of a real Ethernet frame under another
// link type or encapsulation.
type encap struct {
	name string
	link LinkType
	wrap func(eth []byte, l3 int, family uint8) []byte
	// tsharkArgs are extra tshark options for this encapsulation.
	tsharkArgs []string
	// levels is the number of tunnel levels of a wrapped frame (0: not
	// a tunnel).
	levels int
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ethHeader(eth []byte, et uint16) []byte {
	return append(append([]byte{}, eth[:12]...), be16(et)...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func etherTypeOf(family uint8) uint16 {
	if family == 6 {
		return EtherTypeIPv6
	}
	return EtherTypeIPv4
}

var encaps = []encap{
	{"raw", LinkRaw, func(e []byte, l3 int, f uint8) []byte { return e[l3:] }, nil, 0},
	{"null-le", LinkNull, func(e []byte, l3 int, f uint8) []byte {
		af := uint32(2)
		if f == 6 {
			af = 30
		}
		return cat(binary.LittleEndian.AppendUint32(nil, af), e[l3:])
	}, nil, 0},
	{"loop-be", LinkLoop, func(e []byte, l3 int, f uint8) []byte {
		af := uint32(2)
		if f == 6 {
			af = 24
		}
		return cat(binary.BigEndian.AppendUint32(nil, af), e[l3:])
	}, nil, 0},
	{"sll", LinkLinuxSLL, func(e []byte, l3 int, f uint8) []byte {
		// packet type 0 (to us), ARPHRD_ETHER, address length 6, address.
		h := cat(be16(0), be16(1), be16(6), e[6:12], []byte{0, 0}, be16(etherTypeOf(f)))
		return cat(h, e[l3:])
	}, nil, 0},
	{"sll2", LinkLinuxSLL2, func(e []byte, l3 int, f uint8) []byte {
		h := cat(be16(etherTypeOf(f)), be16(0), []byte{0, 0, 0, 2}, be16(1), []byte{0, 6}, e[6:12], []byte{0, 0})
		return cat(h, e[l3:])
	}, nil, 0},
	{"qinq-9100-8100", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		return cat(ethHeader(e, EtherTypeQinQOld), be16(0x2000|300), be16(EtherTypeVLAN), be16(42), be16(etherTypeOf(f)), e[l3:])
	}, nil, 0},
	{"pppoe", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		ppp := uint16(0x0021)
		if f == 6 {
			ppp = 0x0057
		}
		n := len(e) - l3 + 2
		return cat(ethHeader(e, EtherTypePPPoE), []byte{0x11, 0}, be16(0x1234), be16(uint16(n)), be16(ppp), e[l3:])
	}, nil, 0},
	{"mpls-2-labels", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		return cat(ethHeader(e, EtherTypeMPLS), []byte{0x00, 0x01, 0x00, 0x40}, []byte{0x00, 0x02, 0x01, 0x40}, e[l3:])
	}, nil, 0},
	{"eompls-cw", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		// Label 100 (bottom of stack), a zero pseudowire control word,
		// then the whole frame. tshark's own guess between "control word"
		// and "no control word" goes wrong on some of these, so it is
		// told what label 100 carries, as an operator would.
		return cat(ethHeader(e, EtherTypeMPLS), []byte{0x00, 0x06, 0x41, 0x40}, []byte{0, 0, 0, 0}, e)
	}, []string{"-d", "mpls.label==100,pwethcw"}, 0},
}

// init adds every tunnel encapsulation encaptest builds: the decoder must
// reach tshark's inner connection and keep the outer one in Packet.Outer.
func init() {
	for _, k := range encaptest.Kinds {
		encaps = append(encaps, encap{"tunnel-" + string(k), LinkEthernet, func(e []byte, _ int, _ uint8) []byte {
			fr, _ := encaptest.Wrap(k, e, 7)
			return fr
		}, nil, encaptest.Levels(k)})
	}
}

// TestEncapsulationsMatchTshark re-frames distinct real IP packets under
// each link type and encapsulation the shared captures lack (LOOP, raw,
// SLL with IP, PPPoE, 0x9100 QinQ, Ethernet over MPLS with a control
// word, and every tunnel of package encaptest), writes them to a pcap and compares the decoder with tshark's
// decode of that file.
func TestEncapsulationsMatchTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	var src []capPacket
	var p Packet
	for _, s := range distinctSamples(t) {
		Decode(s.pk.link, s.pk.data, &p)
		if s.pk.link == LinkEthernet && p.HasTuple && p.VLANTags == 0 && p.MPLSLabels == 0 && p.Status == 0 {
			src = append(src, s.pk)
		}
	}
	if len(src) < 5 {
		t.Fatalf("only %d plain IP samples", len(src))
	}
	dir := t.TempDir()
	for _, e := range encaps {
		t.Run(e.name, func(t *testing.T) {
			path := filepath.Join(dir, e.name+".pcap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w := pcapgo.NewWriter(f)
			if err := w.WriteFileHeader(262144, layers.LinkType(e.link)); err != nil {
				t.Fatal(err)
			}
			var frames [][]byte
			for _, pk := range src {
				var orig Packet
				Decode(pk.link, pk.data, &orig)
				fr := e.wrap(pk.data, orig.L3Offset, orig.Tuple.Family)
				frames = append(frames, fr)
				ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(fr), Length: len(fr)}
				if err := w.WritePacket(ci, fr); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			rows, err := runTshark(tshark, path, e.tsharkArgs...)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(frames) {
				t.Fatalf("tshark read %d of %d frames", len(rows), len(frames))
			}
			exc := exceptions{}
			for i, fr := range frames {
				Decode(e.link, fr, &p)
				if !p.HasTuple {
					t.Errorf("frame %d: no tuple, status %v", i+1, p.Status)
					continue
				}
				if wrapped := len(fr) != len(src[i].data); e.levels > 0 && wrapped {
					var orig Packet
					Decode(src[i].link, src[i].data, &orig)
					if want := e.levels + int(orig.NTunnels); int(p.NTunnels) != want {
						t.Errorf("frame %d (%v): %d tunnel levels stripped, want %d", i+1, rows[i][fProtocols], p.NTunnels, want)
					}
				}
				for _, b := range comparePacket(&p, &rows[i], exc) {
					t.Errorf("frame %d (%v): %s", i+1, rows[i][fProtocols], b)
				}
			}
			if len(exc) > 0 {
				t.Logf("exceptions: %v", exc)
			}
		})
	}
}
