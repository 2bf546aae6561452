package bpf

import (
	"encoding/binary"
	"os"
	"testing"
)

// tcpFrame is an Ethernet/IPv4/TCP frame of n bytes (an ACK with data)
// from 192.0.2.2:port to 192.0.2.1:5201.
func tcpFrame(n int, port uint16) []byte {
	f := make([]byte, n)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8], ip[9] = 64, 6
	copy(ip[12:], []byte{192, 0, 2, 2, 192, 0, 2, 1})
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], port)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 0x50, 0x10
	return f
}

// BenchmarkCutoff runs the program on one 1514-byte TCP frame of one
// flow, repeated in the kernel (BPF_PROG_TEST_RUN): the first packets
// pass under the 64 KiB budget, the rest are accounted and cut, as in
// the body of a bulk transfer. It reports the kernel's ns per run.
func BenchmarkCutoff(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("loading eBPF needs root")
	}
	var objs TapirObjects
	if err := LoadTapirObjects(&objs, nil); err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	cfg := TapirCutoffConfig{Budget: 65536, Snaplen: 262144}
	if err := objs.TapirConfig.Put(uint32(0), &cfg); err != nil {
		b.Fatal(err)
	}
	// A socket filter sees the frame from its Ethernet header (AF_PACKET
	// pushes it back); BPF_PROG_TEST_RUN pulls the first 14 bytes of its
	// input as a link header it does not show the program, so the frame
	// goes behind a dummy one.
	frame := append(make([]byte, 14), tcpFrame(1514, 40000)...)
	frame[12] = 0x08
	const repeat = 100000
	var total float64
	runs := 0
	for b.Loop() {
		ret, d, err := objs.TapirCutoff.Benchmark(frame, repeat, nil)
		if err != nil {
			b.Fatal(err)
		}
		if ret != 0 {
			b.Fatalf("a packet past the budget passed (%d)", ret)
		}
		total += float64(d.Nanoseconds())
		runs++
	}
	b.ReportMetric(total/float64(runs), "kernel-ns/packet")
}
