package block

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

type testPacket struct {
	ts      int64
	origLen int
	data    []byte
	group   uint64
	link    layers.LinkType
}

// loadCapture reads a shared classic pcap (gzip allowed) with pcapgo and
// groups packets by a direction-free hash of their network addresses.
func loadCapture(tb testing.TB, rel string) []testPacket {
	tb.Helper()
	raw, err := os.ReadFile(testenv.Pcap(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	if strings.HasSuffix(rel, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			tb.Fatal(err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			tb.Fatal(err)
		}
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	var out []testPacket
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		p := testPacket{ts: ci.Timestamp.UnixNano(), origLen: ci.Length, data: data, link: r.LinkType()}
		pk := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		if nl := pk.NetworkLayer(); nl != nil {
			p.group = nl.NetworkFlow().FastHash()
			if tl := pk.TransportLayer(); tl != nil {
				p.group ^= tl.TransportFlow().FastHash() * 31
			}
		}
		out = append(out, p)
	}
	return out
}

// encodeGrouped builds blocks per group, closing a block when its raw
// body reaches maxRaw, and returns the encoded blocks in close order and
// the total uncompressed body bytes.
func encodeGrouped(tb testing.TB, enc *Encoder, pkts []testPacket, maxRaw int) [][]byte {
	tb.Helper()
	builders := map[uint64]*Builder{}
	var order []uint64
	var out [][]byte
	var dst []byte
	flush := func(b *Builder) {
		var err error
		dst, _, err = b.Encode(enc, dst[:0])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append([]byte(nil), dst...))
		m := b.Meta()
		m.Seq++
		b.Reset(m)
	}
	for i := range pkts {
		p := &pkts[i]
		b := builders[p.group]
		if b == nil {
			b = &Builder{}
			b.Reset(Meta{SensorID: "s1", Interface: "eth0", LinkType: uint16(p.link), CommunityID: "1:test"})
			builders[p.group] = b
			order = append(order, p.group)
		}
		b.Append(p.ts, p.origLen, p.data)
		if b.Len() >= maxRaw {
			flush(b)
		}
	}
	for _, g := range order {
		if builders[g].Packets() > 0 {
			flush(builders[g])
		}
	}
	return out
}
