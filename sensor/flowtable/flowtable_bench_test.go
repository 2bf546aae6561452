package flowtable

import (
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/tapir-sensor/tapir/flow"
)

// BenchmarkPacketEcho runs the packets of echo-connections.pcap.gz,
// pre-decoded, through a table (Advance per packet, as the sensor does).
func BenchmarkPacketEcho(b *testing.B) {
	infos, _ := packetInfos(readCapture(b, filepath.Join(testenv.Pcaps(b), "zeek", "echo-connections.pcap.gz")))
	tab, err := New[struct{}](DefaultConfig(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNanos(b)
	var off int64
	for i := 0; i < b.N; i++ {
		j := i % len(infos)
		if j == 0 && i > 0 {
			off = infos[len(infos)-1].Time - infos[0].Time + 1e9
			tab.Flush(flow.ReasonEndOfCapture)
		}
		p := &infos[j]
		p.Time += off
		tab.Advance(p.Time)
		tab.Packet(p)
		p.Time -= off
	}
	b.ReportMetric(float64(cpuNanos(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(tab.Stats().Created), "flows")
}

// BenchmarkPacketNewFlows sends every packet on a new random tuple into a
// full table (each packet creates a flow and evicts one).
func BenchmarkPacketNewFlows(b *testing.B) {
	tab, err := New[struct{}](Config{MaxFlows: 100_000}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1 << 20
	tuples := make([]flow.Tuple, n)
	for i := range tuples {
		v := rng.Uint32()
		tuples[i] = flow.Tuple{Src: flow.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}),
			Dst: flow.AddrFrom4([4]byte{10, 0, 0, 1}), SrcPort: uint16(rng.Uint32()), DstPort: 443,
			Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}
	}
	p := PacketInfo{WireLen: 60, CapLen: 60, TCPFlags: flow.TCPFlagSYN}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNanos(b)
	for i := 0; i < b.N; i++ {
		p.Tuple = tuples[i&(n-1)]
		p.Time = int64(i)
		tab.Advance(p.Time)
		tab.Packet(&p)
	}
	b.ReportMetric(float64(cpuNanos(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBytesPerFlow measures the heap held per open flow (T empty):
// 1M distinct flows inserted, heap compared before and after.
func BenchmarkBytesPerFlow(b *testing.B) { benchBytesPerFlow(b, nil) }

// BenchmarkBytesPerTunnelledFlow is BenchmarkBytesPerFlow with every
// flow inside one VXLAN tunnel: the entry plus its kept chain.
func BenchmarkBytesPerTunnelledFlow(b *testing.B) {
	o := flow.AddrFrom4([4]byte{192, 0, 2, 1})
	benchBytesPerFlow(b, []flow.Tunnel{{Type: flow.TunnelVXLAN, Src: o, Dst: o, Family: flow.FamilyIPv4, Proto: flow.ProtoUDP,
		SrcPort: 49152, DstPort: 4789, ID: 7, HasID: true}})
}

func benchBytesPerFlow(b *testing.B, tun []flow.Tunnel) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab, err := New[struct{}](Config{MaxFlows: n}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		p := PacketInfo{WireLen: 60, CapLen: 60, TCPFlags: flow.TCPFlagSYN, Tunnels: tun,
			Tuple: flow.Tuple{Dst: flow.AddrFrom4([4]byte{10, 0, 0, 1}), DstPort: 443, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}}
		for j := range n {
			p.Tuple.Src = flow.AddrFrom4([4]byte{1, byte(j >> 16), byte(j >> 8), byte(j)})
			p.Time = int64(j)
			tab.Packet(&p)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if tab.Len() != n {
			b.Fatalf("len %d", tab.Len())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/flow")
		runtime.KeepAlive(tab)
	}
}

// BenchmarkPacketBusy is the busy tap: 200,000 open flows, far more than
// the CPU caches hold, and every packet belongs to one of them picked at
// random (either direction), so each lookup goes to memory. No flow is
// created or ended in the timed loop.
func BenchmarkPacketBusy(b *testing.B) {
	const flows, seqLen = 200_000, 1 << 20
	tab, err := New[struct{}](Config{MaxFlows: 262_144}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	tuples := make([]flow.Tuple, flows)
	p := PacketInfo{WireLen: 1514, CapLen: 1514, TCPFlags: flow.TCPFlagACK}
	for i := range tuples {
		v := rng.Uint32()
		tuples[i] = flow.Tuple{Src: flow.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			Dst: flow.AddrFrom4([4]byte{172, 16, byte(v >> 8), byte(v)}), SrcPort: uint16(32768 + v>>17), DstPort: 443,
			Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}
		p.Tuple = tuples[i]
		tab.Packet(&p)
	}
	seq := make([]flow.Tuple, seqLen)
	for i := range seq {
		seq[i] = tuples[rng.IntN(flows)]
		if rng.IntN(2) == 0 {
			seq[i] = seq[i].Reverse()
		}
	}
	for _, ahead := range []bool{false, true} {
		name := "plain"
		if ahead {
			name = "prefetch-ahead"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuNanos(b)
			for i := 0; i < b.N; i++ {
				if ahead {
					tab.PrefetchSlot(&seq[(i+2)&(seqLen-1)])
					tab.PrefetchEntry(&seq[(i+1)&(seqLen-1)])
				}
				p.Tuple = seq[i&(seqLen-1)]
				p.Time = int64(i) * 100
				tab.Advance(p.Time)
				tab.Packet(&p)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuNanos(b)-cpu0)/float64(b.N), "cpu-ns/op")
			if tab.Len() != flows {
				b.Fatalf("%d flows open, want %d", tab.Len(), flows)
			}
		})
	}
}

// cpuNanos is the process's CPU time (user+sys) in ns: steadier than wall
// time on a shared machine.
func cpuNanos(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
