package decode

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
)

// decoderOptions are the option sets the Decoder is checked under: the
// defaults, no tunnels, a UDP mirror, other tunnel ports.
func decoderOptions() []*Options {
	return []*Options{
		nil,
		{TunnelDepth: -1},
		{Mirror: Mirror{Type: flow.TunnelVXLAN}},
		{Mirror: Mirror{Type: flow.TunnelGeneve, Port: 53}, TunnelDepth: -1},
		{TunnelDepth: 1, VXLANPorts: []uint16{53}, GTPUPorts: []uint16{}},
	}
}

// checkDecoder decodes frame with d and with a fresh Options.Decode and
// fails on any difference in the Packet or, for a common frame, in what
// ObserveCommon counts against Observe.
func checkDecoder(t *testing.T, d *Decoder, o *Options, link LinkType, frame []byte) (common bool) {
	t.Helper()
	var want Packet
	if o == nil {
		Decode(link, frame, &want)
	} else {
		o.Decode(link, frame, &want)
	}
	common = d.Decode(link, frame)
	if d.Packet != want {
		t.Fatalf("link %d frame %x (common %v):\n got %+v\nwant %+v", link, frame, common, d.Packet, want)
	}
	if common {
		var a, b Counters
		a.Observe(&want, len(frame)+4)
		b.ObserveCommon(&d.Packet, len(frame)+4)
		if a != b {
			t.Fatalf("frame %x: ObserveCommon counted %+v, Observe %+v", frame, b, a)
		}
		if want.Status != 0 || !want.HasPorts || want.IsFragment || want.NTunnels != 0 || want.MPLSLabels != 0 {
			t.Fatalf("frame %x reported common: %+v", frame, want)
		}
	}
	return common
}

// TestDecoderMatchesDecode runs every packet of the shared captures, in
// order, through one Decoder per option set (common and other frames
// interleaved, so the common path starts from every kind of leftover
// Packet) and through Options.Decode: the Packets are the same, and the
// common path took the bulk of the frames.
func TestDecoderMatchesDecode(t *testing.T) {
	for _, o := range decoderOptions() {
		var d Decoder
		d.SetOptions(o)
		total, common := 0, 0
		for _, c := range allCaptures(t) {
			for _, pk := range c.packets {
				total++
				if checkDecoder(t, &d, o, pk.link, pk.data) {
					common++
				}
			}
		}
		for _, s := range tunnelSeeds(t) {
			checkDecoder(t, &d, o, s.pk.link, s.pk.data)
		}
		t.Logf("options %+v: %d of %d frames common", o, common, total)
		if common < total/2 {
			t.Errorf("options %+v: only %d of %d frames took the common path", o, common, total)
		}
	}
}

// commonEdgeFrames returns Ethernet frames at the edges of the common
// path: TCP, UDP, ICMP and SCTP over IPv4 and IPv6 with 0 to 3 VLAN
// tags, each whole, cut at every length and with one header field
// changed (fragments, IP options, lengths below and above the frame, an
// 802.3 length, MPLS, 802.1ad, a tunnel port).
func commonEdgeFrames() [][]byte {
	base := func(proto uint8, v6 bool, tags int) []byte {
		var f []byte
		f = append(f, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1)
		for i := range tags {
			f = append(f, 0x81, 0x00, byte(i), byte(10+i))
		}
		l4 := make([]byte, 20+6)
		binary.BigEndian.PutUint16(l4[0:], 4789)
		binary.BigEndian.PutUint16(l4[2:], 443)
		if proto == flow.ProtoTCP {
			l4[12], l4[13] = 5<<4, 0x12
		} else {
			l4 = l4[:8+6]
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		}
		if v6 {
			f = append(f, 0x86, 0xdd)
			ip := make([]byte, 40)
			ip[0], ip[6] = 0x60, proto
			binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
			ip[8], ip[39] = 0x20, 1
			return append(append(f, ip...), l4...)
		}
		f = append(f, 0x08, 0x00)
		ip := make([]byte, 20)
		ip[0], ip[9] = 0x45, proto
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		return append(append(f, ip...), l4...)
	}
	var frames [][]byte
	for _, proto := range []uint8{flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoSCTP} {
		for _, v6 := range []bool{false, true} {
			for tags := range 4 {
				f := base(proto, v6, tags)
				ipAt := 14 + 4*tags
				frames = append(frames, f)
				for cut := range len(f) {
					frames = append(frames, f[:cut])
				}
				for _, mod := range []func(g []byte){
					func(g []byte) { g[ipAt+6] |= 0x20 },                                 // MF (v4) / payload length (v6)
					func(g []byte) { g[ipAt+7] = 1 },                                     // offset (v4) / hop limit (v6)
					func(g []byte) { g[ipAt+6] = 0x40 },                                  // DF (v4) / next header TCP (v6)
					func(g []byte) { g[ipAt] = g[ipAt]&0xf0 | 6 },                        // IHL 24 (v4)
					func(g []byte) { g[ipAt] = g[ipAt]&0xf0 | 4 },                        // IHL 16 (v4)
					func(g []byte) { g[ipAt] = 0x55 },                                    // version 5
					func(g []byte) { binary.BigEndian.PutUint16(g[ipAt+2:], 0) },         // total / flow label 0
					func(g []byte) { binary.BigEndian.PutUint16(g[ipAt+2:], 10) },        // total below IHL
					func(g []byte) { binary.BigEndian.PutUint16(g[ipAt+2:], 30) },        // total inside the frame
					func(g []byte) { binary.BigEndian.PutUint16(g[ipAt+4:], 0) },         // v6 payload length 0
					func(g []byte) { binary.BigEndian.PutUint16(g[ipAt+4:], 10) },        // v6 payload length short
					func(g []byte) { g[len(g)-8] = 0x40 },                                // a transport header byte (TCP) / payload (UDP)
					func(g []byte) { g[ipAt-2], g[ipAt-1] = 0x05, 0xdc },                 // an 802.3 length
					func(g []byte) { g[ipAt-2], g[ipAt-1] = 0x88, 0x47 },                 // MPLS
					func(g []byte) { g[12], g[13] = 0x88, 0xa8 },                         // 802.1ad outer tag
					func(g []byte) { binary.BigEndian.PutUint16(g[len(g)-14+0:], 6081) }, // UDP source port 6081 (Geneve) / TCP data offset 1
				} {
					g := append([]byte(nil), f...)
					mod(g)
					frames = append(frames, g)
				}
			}
		}
	}
	return frames
}

// TestDecoderCommonEdges runs commonEdgeFrames through one Decoder per
// option set: the same Packets as Options.Decode.
func TestDecoderCommonEdges(t *testing.T) {
	frames := commonEdgeFrames()
	for _, o := range decoderOptions() {
		var d Decoder
		d.SetOptions(o)
		common := 0
		for _, f := range frames {
			if checkDecoder(t, &d, o, LinkEthernet, f) {
				common++
			}
		}
		for _, link := range []LinkType{LinkRaw, LinkLinuxSLL, LinkNull} {
			checkDecoder(t, &d, o, link, frames[0][14:])
		}
		if common == 0 {
			t.Errorf("options %+v: no common frame", o)
		}
	}
}

// FuzzDecoder decodes two frames in turn through one Decoder and through
// Options.Decode, under each option set: the same Packets.
func FuzzDecoder(f *testing.F) {
	frames := commonEdgeFrames()
	for i, fr := range frames {
		f.Add(uint16(LinkEthernet), fr, frames[(i+7)%len(frames)], uint8(i))
	}
	dir := os.Getenv("TAPIR_PCAPS")
	if dir == "" {
		dir = defaultPcapsDir()
	}
	if dir != "" {
		for _, s := range tunnelSeeds(f) {
			f.Add(uint16(s.pk.link), s.pk.data, []byte(nil), uint8(0))
		}
		for _, c := range allCaptures(f) {
			for i, pk := range c.packets {
				if i%50 == 0 && i+1 < len(c.packets) {
					f.Add(uint16(pk.link), pk.data, c.packets[i+1].data, uint8(i))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, link uint16, a, b []byte, opt uint8) {
		opts := decoderOptions()
		o := opts[int(opt)%len(opts)]
		var d Decoder
		d.SetOptions(o)
		checkDecoder(t, &d, o, LinkType(link), a)
		checkDecoder(t, &d, o, LinkEthernet, b)
		checkDecoder(t, &d, o, LinkType(link), a)
	})
}
