package appmeta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/capture"
)

// convKey names a conversation direction-free: "tcp a:p <-> b:q", the
// lower address:port first. Both tapir's flows and tshark's rows are keyed
// by it.
func convKey(proto uint8, src, dst netip.Addr, sport, dport uint16) string {
	a, b := netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return fmt.Sprintf("%s %s <-> %s", flow.ProtoName(proto), a, b)
}

// payloadPacket is one transport payload of a capture, for fuzz seeds and
// benchmarks.
type payloadPacket struct {
	tcp        bool
	fromClient bool
	seq        uint32
	sport      uint16
	dport      uint16
	payload    []byte
	key        string
}

// readPayloads decodes a capture and returns its TCP and UDP payload
// packets, with the direction of each relative to its flow's initiator
// (the sender of the first packet, or the receiver of a first SYN-ACK).
func readPayloads(t testing.TB, path string) []payloadPacket {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	init := map[flow.Key]bool{}
	var out []payloadPacket
	var p decode.Packet
	for {
		data, ci, err := src.ReadPacket()
		if err == io.EOF || err != nil {
			break
		}
		decode.Decode(decode.LinkType(ci.LinkType), data, &p)
		if !p.HasTuple || !p.HasPorts || (p.Proto != flow.ProtoTCP && p.Proto != flow.ProtoUDP) || p.IsFragment {
			continue
		}
		k, fwd := p.Tuple.Key()
		initFwd, seen := init[k]
		if !seen {
			initFwd = fwd
			if p.Proto == flow.ProtoTCP && p.TCPFlags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK {
				initFwd = !fwd
			}
			init[k] = initFwd
		}
		if p.PayloadLen <= 0 {
			continue
		}
		pp := payloadPacket{tcp: p.Proto == flow.ProtoTCP, fromClient: fwd == initFwd,
			sport: p.Tuple.SrcPort, dport: p.Tuple.DstPort,
			payload: bytes.Clone(data[p.PayloadOffset : p.PayloadOffset+p.PayloadLen]),
			key: convKey(p.Proto, p.Tuple.Src.Netip(p.Tuple.Family), p.Tuple.Dst.Netip(p.Tuple.Family),
				p.Tuple.SrcPort, p.Tuple.DstPort)}
		if pp.tcp {
			pp.seq = binary.BigEndian.Uint32(data[p.L4Offset+4:])
		}
		out = append(out, pp)
	}
	return out
}

// extract runs an Extractor over a capture and returns each
// conversation's metadata.
func extract(t testing.TB, path string, cfg Config) (map[string]*flow.AppMeta, Stats) {
	t.Helper()
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]*Flow{}
	for _, pp := range readPayloads(t, path) {
		f := flows[pp.key]
		if f == nil {
			f = x.NewFlow(pp.tcp)
			flows[pp.key] = f
		}
		if f.Done() {
			continue
		}
		if x.Packet(f, pp.fromClient, pp.seq, pp.payload, pp.sport, pp.dport) {
			x.Release(f)
		}
	}
	out := map[string]*flow.AppMeta{}
	for k, f := range flows {
		if m := f.Meta(); m != nil {
			out[k] = m
		}
	}
	return out, x.Stats()
}

// tsharkRows runs tshark with a display filter and returns one row of
// fields per matching packet. The first five fields of every row are the
// conversation (ip/ipv6 src and dst, ports, protocol); the requested
// fields follow. Repeated values are joined with "|".
func tsharkRows(t testing.TB, path, filter string, fields ...string) []tsharkRow {
	t.Helper()
	bin := testenv.Tool(t, "tshark")
	args := []string{"-n", "-r", path, "-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "aggregator=|", "-E", "occurrence=a",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.srcport", "-e", "udp.srcport",
		"-e", "tcp.dstport", "-e", "udp.dstport"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows []tsharkRow
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 8+len(fields) {
			t.Fatalf("tshark row %q: %d columns", line, len(c))
		}
		first := func(s string) string { return strings.Split(s, "|")[0] }
		src, dst := first(c[0]+c[1]), first(c[2]+c[3])
		proto, sp, dp := uint8(flow.ProtoTCP), c[4], c[6]
		if sp == "" {
			proto, sp, dp = flow.ProtoUDP, c[5], c[7]
		}
		var sport, dport uint16
		_, _ = fmt.Sscan(first(sp), &sport)
		_, _ = fmt.Sscan(first(dp), &dport)
		r := tsharkRow{key: convKey(proto, netip.MustParseAddr(src), netip.MustParseAddr(dst), sport, dport),
			vals: map[string]string{}, sport: first(sp)}
		for i, f := range fields {
			r.vals[f] = c[8+i]
		}
		rows = append(rows, r)
	}
	return rows
}

type tsharkRow struct {
	key   string
	vals  map[string]string
	sport string // the sender's port
}
