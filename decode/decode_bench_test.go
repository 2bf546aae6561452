package decode

import (
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapir-sensor/tapir/internal/encaptest"
)

// benchPackets returns the Ethernet packets of all shared captures, with
// zeek/echo-connections.pcap.gz (82,582 packets) first, and every packet
// of any link type.
func benchPackets(b *testing.B) (eth, all []capPacket) {
	b.Helper()
	caps := allCaptures(b)
	for _, pass := range []bool{true, false} {
		for _, c := range caps {
			if strings.HasSuffix(c.path, "echo-connections.pcap.gz") != pass {
				continue
			}
			for _, pk := range c.packets {
				all = append(all, pk)
				if pk.link == LinkEthernet {
					eth = append(eth, pk)
				}
			}
		}
	}
	if len(eth) == 0 {
		b.Fatal("no packets")
	}
	return eth, all
}

// runPerPacket runs fn once per b.N iteration over the packets in turn,
// so ns/op is ns per packet; it also reports ns/packet explicitly.
func runPerPacket(b *testing.B, pkts []capPacket, fn func(pk *capPacket)) {
	b.ReportAllocs()
	var bytes int64
	for i := range pkts {
		bytes += int64(len(pkts[i].data))
	}
	b.SetBytes(bytes / int64(len(pkts)))
	b.ResetTimer()
	j := 0
	for i := 0; i < b.N; i++ {
		fn(&pkts[j])
		j++
		if j == len(pkts) {
			j = 0
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}

var sink int

// BenchmarkDecode compares tapir's Decode with gopacket's three decoding
// styles over the same in-memory Ethernet packets (gopacket's decoders are
// given Ethernet only; "tapir-all-links" adds the other link types). The
// lazy gopacket variant asks for the transport flow, as a flow table
// must, which makes it decode through the transport layer.
func BenchmarkDecode(b *testing.B) {
	ethPkts, all := benchPackets(b)
	b.Run("tapir", func(b *testing.B) {
		var p Packet
		runPerPacket(b, ethPkts, func(pk *capPacket) {
			Decode(pk.link, pk.data, &p)
			sink += int(p.Tuple.SrcPort)
		})
	})
	b.Run("tapir-all-links", func(b *testing.B) {
		var p Packet
		runPerPacket(b, all, func(pk *capPacket) {
			Decode(pk.link, pk.data, &p)
			sink += int(p.Tuple.SrcPort)
		})
	})
	b.Run("tapir+counters", func(b *testing.B) {
		var p Packet
		var c Counters
		runPerPacket(b, ethPkts, func(pk *capPacket) {
			Decode(pk.link, pk.data, &p)
			c.Observe(&p, pk.wireLen)
		})
		sink += int(c.Packets)
	})
	b.Run("gopacket-default", func(b *testing.B) {
		runPerPacket(b, ethPkts, func(pk *capPacket) {
			p := gopacket.NewPacket(pk.data, layers.LayerTypeEthernet, gopacket.Default)
			sink += len(p.Layers())
		})
	})
	b.Run("gopacket-lazy-nocopy", func(b *testing.B) {
		opts := gopacket.DecodeOptions{Lazy: true, NoCopy: true}
		runPerPacket(b, ethPkts, func(pk *capPacket) {
			p := gopacket.NewPacket(pk.data, layers.LayerTypeEthernet, opts)
			if tl := p.TransportLayer(); tl != nil {
				sink += len(tl.TransportFlow().Src().Raw())
			}
		})
	})
	b.Run("gopacket-dlp", func(b *testing.B) {
		var (
			eth   layers.Ethernet
			dot1q layers.Dot1Q
			ip4   layers.IPv4
			ip6   layers.IPv6
			tcp   layers.TCP
			udp   layers.UDP
			icmp4 layers.ICMPv4
			icmp6 layers.ICMPv6
			sctp  layers.SCTP
		)
		parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
			&eth, &dot1q, &ip4, &ip6, &tcp, &udp, &icmp4, &icmp6, &sctp)
		parser.IgnoreUnsupported = true
		decoded := make([]gopacket.LayerType, 0, 16)
		runPerPacket(b, ethPkts, func(pk *capPacket) {
			_ = parser.DecodeLayers(pk.data, &decoded)
			sink += len(decoded)
		})
	})
}

// wrapAll wraps up to n of pkts in tunnel kind k (frames the tunnel
// cannot carry are left out).
func wrapAll(pkts []capPacket, k encaptest.Kind, n int) []capPacket {
	var out []capPacket
	for i := range pkts {
		if len(out) == n {
			break
		}
		if fr, ok := encaptest.Wrap(k, pkts[i].data, uint32(i)); ok {
			out = append(out, capPacket{link: LinkEthernet, data: fr, wireLen: len(fr)})
		}
	}
	return out
}

// BenchmarkDecodeTunnels measures Decode on the shared Ethernet packets
// as they are ("plain", today's traffic: the tunnel checks on every UDP
// packet included), with tunnels switched off ("plain-no-tunnels",
// Options.TunnelDepth -1: the decoder before tunnels), and wrapped in each
// tunnel kind (the first 20,000 packets): the cost of taking tunnels
// apart, in ns per packet, in the same run.
func BenchmarkDecodeTunnels(b *testing.B) {
	ethPkts, _ := benchPackets(b)
	run := func(name string, o *Options, pkts []capPacket) {
		b.Run(name, func(b *testing.B) {
			var p Packet
			runPerPacket(b, pkts, func(pk *capPacket) {
				o.Decode(pk.link, pk.data, &p)
				sink += int(p.Tuple.SrcPort) + int(p.NTunnels)
			})
		})
	}
	run("plain", &Options{}, ethPkts)
	run("plain-no-tunnels", &Options{TunnelDepth: -1}, ethPkts)
	for _, k := range []encaptest.Kind{encaptest.IPIP4, encaptest.GRE, encaptest.ERSPAN2, encaptest.VXLAN,
		encaptest.Geneve, encaptest.GTPU, encaptest.VXLANInGR} {
		pkts := wrapAll(ethPkts, k, 20000)
		run(string(k), &Options{}, pkts)
		run(string(k)+"-not-stripped", &Options{TunnelDepth: -1}, pkts)
	}
}
