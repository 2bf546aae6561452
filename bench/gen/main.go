// Command gen writes a deterministic many-flows trace: the busy tap that
// tapir's benchmarks and round-trip tests run on.
//
//	go run ./bench/gen -flows 200000 -open 75000 -seed 1 -o many.pcap [-manifest many.tsv]
//
// The trace holds Flows flows, Open of them open at once in the steady
// state (Open slots each run flows back to back), in time order, as one
// classic Ethernet pcap (microsecond timestamps). Flows are IPv4 or IPv6,
// TCP (handshake, request/response rounds of data both ways with delayed
// ACKs, FIN/ACK close or, for some, an RST) or UDP (DNS-like exchanges,
// QUIC-like bulk). Sizes are heavy-tailed (Pareto: most flows a few
// packets, a few carry most of the bytes, a few long flows run for
// seconds with thousands of packets); 60 % of the flows carry random
// payloads (as TLS does), 40 % text; packets are up to 1514 bytes with
// valid checksums. Every client address is unique to its flow, so no two
// flows share a 5-tuple. The defaults give about 2 M packets in a few
// seconds.
//
// With -manifest, a tab-separated file lists every flow (sorted by flow
// number): its 5-tuple, packets and frame bytes per direction, first and
// last packet time, and a SHA-256 digest of its packets in order (each
// packet as its Unix-ns time in 8 bytes big-endian, its length in 4 bytes,
// then its bytes), so a test can check a flow's retrieved packets byte for
// byte without the trace. A summary goes to stderr.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run parses the flags, generates the trace and writes the outputs.
func run(args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Flows, "flows", cfg.Flows, "flows in the trace")
	fs.IntVar(&cfg.Open, "open", cfg.Open, "flows open at once (steady state)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (same seed, same bytes)")
	start := fs.String("start", cfg.Start.Format(time.RFC3339), "time of the trace's start (RFC 3339)")
	fs.Float64Var(&cfg.IPv6, "ipv6", cfg.IPv6, "share of IPv6 flows")
	fs.Float64Var(&cfg.UDP, "udp", cfg.UDP, "share of UDP flows")
	fs.Float64Var(&cfg.Text, "text", cfg.Text, "share of flows with text payloads (the rest random)")
	fs.Float64Var(&cfg.RST, "rst", cfg.RST, "share of TCP flows ending with an RST")
	fs.Float64Var(&cfg.Upload, "upload", cfg.Upload, "share of TCP flows whose client sends the bulk")
	fs.Float64Var(&cfg.Long, "long", cfg.Long, "share of long flows (4,000-20,000 bulk packets over 2-10 s)")
	fs.Float64Var(&cfg.Alpha, "alpha", cfg.Alpha, "Pareto shape of flow sizes in packets (> 1; smaller is heavier)")
	fs.IntVar(&cfg.MaxBulk, "max-bulk", cfg.MaxBulk, "cap of a flow's bulk packets (long flows aside)")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "the first flows start spread over this")
	out := fs.String("o", "", "output pcap (- for stdout)")
	manifest := fs.String("manifest", "", "write the flow manifest (TSV) to FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-o FILE is required, no arguments")
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	cfg.Start = t
	st, err := writeTrace(cfg, *out, *manifest, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gen: %d flows (%d TCP, %d UDP, %d IPv6, %d text, %d long), %d packets, %d bytes, "+
		"max %d open at once, largest flow %d packets, %.1f s of traffic\n",
		st.Flows, st.TCP, st.UDP, st.IPv6, st.Text, st.Long, st.Packets, st.Bytes,
		st.MaxOpen, st.MaxFlowPackets, float64(st.Last-st.First)/1e9)
	return nil
}

// writeTrace generates the trace into the pcap file out (- for stdout)
// and, when manifest is set, the manifest.
func writeTrace(cfg Config, out, manifest string, stdout io.Writer) (Stats, error) {
	w := stdout
	var file *os.File
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return Stats{}, fmt.Errorf("create output: %w", err)
		}
		file, w = f, f
	}
	pw, err := newPcapWriter(w)
	if err != nil {
		return Stats{}, err
	}
	var flows []Flow
	var done func(*Flow)
	if manifest != "" {
		done = func(f *Flow) { flows = append(flows, *f) }
	}
	st, err := Generate(cfg, manifest != "", pw.write, done)
	if err == nil {
		err = pw.flush()
	}
	if file != nil {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close output: %w", cerr)
		}
	}
	if err != nil {
		return st, err
	}
	if manifest != "" {
		err = writeManifest(manifest, flows)
	}
	return st, err
}

// pcapWriter writes a classic little-endian pcap, microsecond timestamps.
type pcapWriter struct {
	w   *bufio.Writer
	rec [16]byte
}

func newPcapWriter(w io.Writer) (*pcapWriter, error) {
	p := &pcapWriter{w: bufio.NewWriterSize(w, 1<<20)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkEth)
	if _, err := p.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write pcap header: %w", err)
	}
	return p, nil
}

// write appends one record; ts is Unix ns (a whole microsecond).
func (p *pcapWriter) write(ts int64, frame []byte) error {
	binary.LittleEndian.PutUint32(p.rec[0:], uint32(ts/1e9))
	binary.LittleEndian.PutUint32(p.rec[4:], uint32(ts%1e9/1e3))
	binary.LittleEndian.PutUint32(p.rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(p.rec[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		return fmt.Errorf("write pcap: %w", err)
	}
	if _, err := p.w.Write(frame); err != nil {
		return fmt.Errorf("write pcap: %w", err)
	}
	return nil
}

func (p *pcapWriter) flush() error {
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("write pcap: %w", err)
	}
	return nil
}

// manifestHeader names the manifest's columns.
const manifestHeader = "#flow\tproto\tclient\tcport\tserver\tsport\tpayload\tend\tlong\t" +
	"c2s_packets\ts2c_packets\tc2s_bytes\ts2c_bytes\tfirst_ns\tlast_ns\tsha256\n"

// writeManifest writes the flows, sorted by number, as TSV.
func writeManifest(path string, flows []Flow) error {
	slices.SortFunc(flows, func(a, b Flow) int { return a.ID - b.ID })
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create manifest: %w", err)
	}
	w := bufio.NewWriter(f)
	_, _ = w.WriteString(manifestHeader) // a write error sticks in w: Flush returns it
	for i := range flows {
		fl := &flows[i]
		payload := "random"
		if fl.Text {
			payload = "text"
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%s\t%d\t%s\t%s\t%t\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n",
			fl.ID, fl.Proto, addr(fl.Client, fl.IPv6), fl.CPort, addr(fl.Server, fl.IPv6), fl.SPort,
			payload, fl.End, fl.Long, fl.Packets[0], fl.Packets[1], fl.Bytes[0], fl.Bytes[1],
			fl.First, fl.Last, hex.EncodeToString(fl.Digest))
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// addr formats a flow address.
func addr(a [16]byte, v6 bool) string {
	if v6 {
		return netip.AddrFrom16(a).String()
	}
	return netip.AddrFrom4([4]byte(a[:4])).String()
}
