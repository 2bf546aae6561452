package engine_test

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
)

// benchPacket is one frame held in memory.
type benchPacket struct {
	data []byte
	ci   capture.CaptureInfo
}

var (
	benchOnce sync.Once
	benchPkts []benchPacket
	benchSpan int64 // packet-time span of benchPkts, plus one second
	benchErr  error
)

// loadBenchPackets reads every packet of zeek/echo-connections.pcap.gz
// (first) and of every other shared capture, once per test binary, with
// the sensor's own file reader. Timestamps are rewritten to be continuous
// across files (never backwards, gaps capped at one second), as
// bench/mkbig.sh does for the large input, so the flow table sees one
// ordered stream instead of jumps between capture years.
func loadBenchPackets(b *testing.B) []benchPacket {
	b.Helper()
	files := testenv.Captures(b)
	benchOnce.Do(func() {
		var echo string
		var rest []string
		for _, f := range files {
			if strings.HasSuffix(f, "echo-connections.pcap.gz") {
				echo = f
			} else {
				rest = append(rest, f)
			}
		}
		if echo == "" {
			benchErr = errors.New("zeek/echo-connections.pcap.gz not found")
			return
		}
		var prevIn, prevOut int64
		for i, f := range append([]string{echo}, rest...) {
			src, err := capture.OpenFile(f)
			if err != nil {
				continue // unreadable on purpose (some pcapng conformance files)
			}
			for {
				data, ci, err := src.ReadPacket()
				if err != nil {
					break // io.EOF, or a damaged file: keep what was read
				}
				in := ci.Timestamp
				if i == 0 && len(benchPkts) == 0 {
					prevOut = in
				} else {
					prevOut += min(max(in-prevIn, 0), int64(time.Second))
				}
				prevIn = in
				ci.Timestamp = prevOut
				benchPkts = append(benchPkts, benchPacket{data: append([]byte(nil), data...), ci: ci})
			}
			src.Close()
		}
		if len(benchPkts) == 0 {
			benchErr = errors.New("no packets read")
			return
		}
		benchSpan = benchPkts[len(benchPkts)-1].ci.Timestamp - benchPkts[0].ci.Timestamp + int64(time.Second)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPkts
}

// memSource is a capture.Source over packets in memory: it returns them
// in turn, again and again (each lap shifted by the packets' time span so
// time keeps going forward), until limit packets were returned, then
// io.EOF. It is how the benchmark drives the engine's real worker path
// without a file.
type memSource struct {
	pkts  []benchPacket
	span  int64
	limit int
	n     int
	j     int
	lap   int64
}

func (m *memSource) ReadPacket() ([]byte, capture.CaptureInfo, error) {
	if m.n >= m.limit {
		return nil, capture.CaptureInfo{}, io.EOF
	}
	p := &m.pkts[m.j]
	ci := p.ci
	ci.Timestamp += m.lap * m.span
	m.n++
	if m.j++; m.j == len(m.pkts) {
		m.j = 0
		m.lap++
	}
	return p.data, ci, nil
}

func (m *memSource) Interfaces() []capture.InterfaceInfo {
	return []capture.InterfaceInfo{{Name: "mem", LinkType: capture.LinkTypeEthernet}}
}

func (m *memSource) Stats() (capture.Stats, error) {
	return capture.Stats{Packets: uint64(m.n)}, nil
}

func (m *memSource) Close() error { return nil }

// countSink counts what the engine emits and keeps nothing.
type countSink struct {
	records, blocks, blockBytes atomic.Uint64
}

func (s *countSink) AddRecord(*flow.Record) error { s.records.Add(1); return nil }

func (s *countSink) AddBlock(b []byte) error {
	s.blocks.Add(1)
	s.blockBytes.Add(uint64(len(b)))
	return nil
}

// workerState has the size and shape of the engine worker's per-flow state
// (a block pointer, a generation, a block number, a link type), so the
// decode+flow benchmark's table entries are as large as the engine's.
// Only the size matters: the fields are blank.
type workerState struct {
	_ *byte  // block
	_ uint64 // generation
	_ uint32 // next block number
	_ uint16 // link type
}

var benchSink int

// cpuNanos returns the CPU time (user+system) the process has used. On
// a shared machine it is a steadier measure than wall time: it does not
// count the time the benchmark waited for a core.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportPerPacket reports ns/packet (wall) and cpu-ns/packet (process CPU
// time since cpu0, GC and every goroutine included); b.N counts packets.
func reportPerPacket(b *testing.B, cpu0 int64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
	if cpu0 > 0 {
		b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/packet")
	}
}

// BenchmarkSensorPath measures the sensor's per-packet cost on every packet
// of the shared captures (echo-connections first: 82,582 of them), one
// packet per b.N iteration, next to gopacket decoding the same packets in
// the same run:
//
//   - decode+flow: decode.Decode and flowtable.Table.Packet, as a worker
//     does them (timers advanced every 250 ms of packet time). Target:
//     <= 100 ns/packet, 0 allocs.
//   - worker: the engine's whole worker path over an in-memory source:
//     decode, flow, block append with delta coding, S2 block encoding
//     (the default), records and blocks handed to a counting sink.
//     Target: <= 250 ns/packet. worker-zstd: the same with zstd fastest.
//     Engine setup is inside the timing, amortized over b.N packets.
//   - gopacket-default: gopacket.NewPacket with gopacket.Default.
//   - gopacket-dlp: a gopacket.DecodingLayerParser (Ethernet, 802.1Q,
//     IPv4, IPv6, TCP, UDP, ICMPv4, ICMPv6, SCTP) on the Ethernet packets
//     (it cannot start at other link types); others count as skipped.
//
// bench/run.sh prints the ratios.
func BenchmarkSensorPath(b *testing.B) {
	pkts := loadBenchPackets(b)
	var bytes int64
	for i := range pkts {
		bytes += int64(len(pkts[i].data))
	}
	perPkt := bytes / int64(len(pkts))

	b.Run("decode+flow", func(b *testing.B) {
		tab, err := flowtable.New[workerState](flowtable.DefaultConfig(), nil, func(*flow.Record, *workerState) {})
		if err != nil {
			b.Fatal(err)
		}
		var p decode.Packet
		var pi flowtable.PacketInfo
		tick := int64(250 * time.Millisecond)
		var lastAdv, lap int64
		b.SetBytes(perPkt)
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNanos()
		j := 0
		for range b.N {
			pk := &pkts[j]
			ts := pk.ci.Timestamp + lap*benchSpan
			decode.Decode(decode.LinkType(pk.ci.LinkType), pk.data, &p)
			if p.HasTuple {
				pi.Tuple = p.Tuple
				pi.TCPFlags = p.TCPFlags
				pi.Frag = flowtable.FragInfo{IsFragment: p.IsFragment, MoreFragments: p.MoreFragments,
					ID: p.FragID, Offset: p.FragOffset}
			} else {
				// the worker's link-layer pseudo flow (see linkTuple)
				pi.Tuple = flow.Tuple{Family: flow.FamilyLink, VLAN: p.Tuple.VLAN, InnerVLAN: p.Tuple.InnerVLAN,
					SrcPort: p.EtherType, DstPort: p.EtherType}
				if pk.ci.LinkType == capture.LinkTypeEthernet && len(pk.data) >= 12 {
					copy(pi.Tuple.Dst[:6], pk.data[0:6])
					copy(pi.Tuple.Src[:6], pk.data[6:12])
				}
				pi.TCPFlags = 0
				pi.Frag = flowtable.FragInfo{}
			}
			pi.Time = ts
			pi.WireLen, pi.CapLen = pk.ci.Length, pk.ci.CaptureLength
			st, n := tab.Packet(&pi)
			if st != nil {
				benchSink += n
			}
			if ts-lastAdv >= tick {
				tab.Advance(ts)
				lastAdv = ts
			}
			if j++; j == len(pkts) {
				j = 0
				lap++
			}
		}
		b.StopTimer()
		reportPerPacket(b, cpu0)
		b.ReportMetric(float64(tab.Stats().Created), "flows")
	})

	for _, comp := range []string{"s2", "zstd"} {
		name := "worker"
		if comp != "s2" { // the default
			name += "-" + comp
		}
		b.Run(name, func(b *testing.B) {
			cfg := engine.DefaultConfig()
			cfg.Blocks.Compression = comp
			cfg.SensorID = "bench"
			src := &memSource{pkts: pkts, span: benchSpan, limit: b.N}
			sink := &countSink{}
			b.SetBytes(perPkt)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNanos()
			e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: sink})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(); err != nil {
				b.Fatal(err)
			}
			if err := e.Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cpuNanos()
			if err := e.Stop(); err != nil {
				b.Fatal(err)
			}
			st := e.Stats()
			if st.Packets != uint64(b.N) || st.StoredPackets != uint64(b.N) {
				b.Fatalf("engine saw %d packets, stored %d, want %d", st.Packets, st.StoredPackets, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
			b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/packet")
			b.ReportMetric(float64(sink.blockBytes.Load())/float64(bytes+16*int64(len(pkts)))*float64(len(pkts))/float64(b.N), "blocks/pcap")
		})
	}

	b.Run("gopacket-default", func(b *testing.B) {
		b.SetBytes(perPkt)
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNanos()
		j := 0
		for range b.N {
			pk := &pkts[j]
			p := gopacket.NewPacket(pk.data, layers.LinkType(pk.ci.LinkType), gopacket.Default)
			benchSink += len(p.Layers())
			if j++; j == len(pkts) {
				j = 0
			}
		}
		b.StopTimer()
		reportPerPacket(b, cpu0)
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
		skipped := 0
		b.SetBytes(perPkt)
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNanos()
		j := 0
		for range b.N {
			pk := &pkts[j]
			if pk.ci.LinkType == capture.LinkTypeEthernet {
				_ = parser.DecodeLayers(pk.data, &decoded)
				benchSink += len(decoded)
			} else {
				skipped++
			}
			if j++; j == len(pkts) {
				j = 0
			}
		}
		b.StopTimer()
		reportPerPacket(b, cpu0)
		b.ReportMetric(float64(skipped)/float64(b.N), "skipped/packet")
	})
}
