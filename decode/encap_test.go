package decode

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	{"raw", LinkRaw, func(e []byte, l3 int, f uint8) []byte { return e[l3:] }, nil},
	{"null-le", LinkNull, func(e []byte, l3 int, f uint8) []byte {
		af := uint32(2)
		if f == 6 {
			af = 30
		}
		return cat(binary.LittleEndian.AppendUint32(nil, af), e[l3:])
	}, nil},
	{"loop-be", LinkLoop, func(e []byte, l3 int, f uint8) []byte {
		af := uint32(2)
		if f == 6 {
			af = 24
		}
		return cat(binary.BigEndian.AppendUint32(nil, af), e[l3:])
	}, nil},
	{"sll", LinkLinuxSLL, func(e []byte, l3 int, f uint8) []byte {
		// packet type 0 (to us), ARPHRD_ETHER, address length 6, address.
		h := cat(be16(0), be16(1), be16(6), e[6:12], []byte{0, 0}, be16(etherTypeOf(f)))
		return cat(h, e[l3:])
	}, nil},
	{"sll2", LinkLinuxSLL2, func(e []byte, l3 int, f uint8) []byte {
		h := cat(be16(etherTypeOf(f)), be16(0), []byte{0, 0, 0, 2}, be16(1), []byte{0, 6}, e[6:12], []byte{0, 0})
		return cat(h, e[l3:])
	}, nil},
	{"qinq-9100-8100", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		return cat(ethHeader(e, EtherTypeQinQOld), be16(0x2000|300), be16(EtherTypeVLAN), be16(42), be16(etherTypeOf(f)), e[l3:])
	}, nil},
	{"pppoe", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		ppp := uint16(0x0021)
		if f == 6 {
			ppp = 0x0057
		}
		n := len(e) - l3 + 2
		return cat(ethHeader(e, EtherTypePPPoE), []byte{0x11, 0}, be16(0x1234), be16(uint16(n)), be16(ppp), e[l3:])
	}, nil},
	{"mpls-2-labels", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		return cat(ethHeader(e, EtherTypeMPLS), []byte{0x00, 0x01, 0x00, 0x40}, []byte{0x00, 0x02, 0x01, 0x40}, e[l3:])
	}, nil},
	{"eompls-cw", LinkEthernet, func(e []byte, l3 int, f uint8) []byte {
		// Label 100 (bottom of stack), a zero pseudowire control word,
		// then the whole frame. tshark's own guess between "control word"
		// and "no control word" goes wrong on some of these, so it is
		// told what label 100 carries, as an operator would.
		return cat(ethHeader(e, EtherTypeMPLS), []byte{0x00, 0x06, 0x41, 0x40}, []byte{0, 0, 0, 0}, e)
	}, []string{"-d", "mpls.label==100,pwethcw"}},
}

// TestEncapsulationsMatchTshark re-frames distinct real IP packets under
// each link type and encapsulation the shared captures lack (LOOP, raw,
// SLL with IP, PPPoE, 0x9100 QinQ, Ethernet over MPLS with a control
// word), writes them to a pcap and compares the decoder with tshark's
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
