package flowtable

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
)

// capPacket is one packet of a capture file.
type capPacket struct {
	link    decode.LinkType
	data    []byte
	wireLen int
	ts      int64
}

// readCapture reads every packet of a pcap, pcap.gz or pcapng file.
func readCapture(tb testing.TB, path string) []capPacket {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			tb.Fatal(err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			tb.Fatal(err)
		}
	}
	var out []capPacket
	r := bufio.NewReader(bytes.NewReader(raw))
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		for {
			data, ci, err := ng.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return out
			} else if err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			lt := ng.LinkType()
			if len(ci.AncillaryData) > 0 {
				if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					lt = l
				}
			}
			out = append(out, capPacket{link: decode.LinkType(lt), data: data, wireLen: ci.Length, ts: ci.Timestamp.UnixNano()})
		}
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, capPacket{link: decode.LinkType(pr.LinkType()), data: data, wireLen: ci.Length, ts: ci.Timestamp.UnixNano()})
	}
}

// packetInfos decodes the packets with the shared decoder (decode/) into PacketInfos;
// packets without an IP tuple are left out. unsupported counts packets of
// link types the decoder does not handle.
func packetInfos(pkts []capPacket) (infos []PacketInfo, unsupported int) {
	var d decode.Packet
	for i := range pkts {
		p := &pkts[i]
		decode.Decode(p.link, p.data, &d)
		if d.Status&decode.StatusUnsupported != 0 && d.EtherType == 0 {
			unsupported++
		}
		if !d.HasTuple {
			continue
		}
		infos = append(infos, PacketInfo{
			Tuple: d.Tuple, Time: p.ts, WireLen: p.wireLen, CapLen: len(p.data), TCPFlags: d.TCPFlags,
			Frag: FragInfo{IsFragment: d.IsFragment, MoreFragments: d.MoreFragments, Offset: d.FragOffset, ID: d.FragID},
		})
	}
	return infos, unsupported
}

// longConfig keeps every flow open until Flush.
func longConfig() Config {
	c := DefaultConfig()
	c.IdleTimeout = 1000 * 3600 * 1e9
	c.ActiveTimeout = 1000 * 3600 * 1e9
	c.UpdateInterval = -1
	c.FragmentTimeout = 1000 * 3600 * 1e9
	return c
}

// collect runs infos through a table with cfg, advancing with packet time,
// flushes it, and returns copies of all records.
func collect(tb testing.TB, cfg Config, infos []PacketInfo) ([]flow.Record, Stats) {
	tb.Helper()
	var recs []flow.Record
	tab, err := New[struct{}](cfg, nil, func(r *flow.Record, _ *struct{}) { recs = append(recs, *r) })
	if err != nil {
		tb.Fatal(err)
	}
	for i := range infos {
		tab.Advance(infos[i].Time)
		tab.Packet(&infos[i])
	}
	tab.Flush(flow.ReasonEndOfCapture)
	return recs, tab.Stats()
}
