package flowtable

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"

	"github.com/tapir-sensor/tapir/flow"
)

// TestEchoConnections: Zeek saw exactly 500 TCP connections in
// echo-connections.pcap.gz (conn-duration-histogram baseline).
func TestEchoConnections(t *testing.T) {
	dir := testenv.Pcaps(t)
	base, err := os.ReadFile(filepath.Join(dir, "zeek", "scripts.base.frameworks.telemetry.conn-duration-histogram.out"))
	if err != nil {
		testenv.SkipOrFail(t, err.Error())
	}
	if !strings.Contains(string(base), "500") {
		t.Fatalf("baseline does not mention 500 connections:\n%s", base)
	}
	infos, _ := packetInfos(readCapture(t, filepath.Join(dir, "zeek", "echo-connections.pcap.gz")))
	recs, _ := collect(t, DefaultConfig(), infos)
	tcp := 0
	for _, r := range recs {
		if r.Reason.Final() && r.Tuple.Proto == flow.ProtoTCP {
			tcp++
		}
	}
	if tcp != 500 {
		t.Errorf("%d TCP flows, Zeek saw 500", tcp)
	}
}

// TestZeekConnLogs compares packets per flow (and per direction where the
// initiator agrees) with Zeek's conn.log baselines.
func TestZeekConnLogs(t *testing.T) {
	dir := testenv.Pcaps(t)
	for log, pcap := range map[string]string{
		"opt.basic.conn.log":                                  "wikipedia.pcap",
		"scripts.base.protocols.ssh.basic.conn.log":           "ssh.pcap",
		"core.tcp.missing-syn.conn.log":                       "missing-syn.pcap",
		"core.q-in-q.conn.log":                                "q-in-q.pcap",
		"core.pcapng-pktsrc.conn.log":                         "pcapng-multi-interface.pcapng",
		"core.tcp.reassembly-known-ports.conn.log":            "get.pcap",
		"scripts.policy.protocols.conn.vlan-logging.conn.log": "q-in-q.pcap",
	} {
		t.Run(log, func(t *testing.T) {
			conns := readConnLog(t, filepath.Join(dir, "zeek", log))
			if len(conns) == 0 {
				t.Fatal("no connections in baseline")
			}
			infos, _ := packetInfos(readCapture(t, filepath.Join(dir, "zeek", pcap)))
			recs, _ := collect(t, longConfig(), infos)
			got := map[tsharkoracle.Key]tsharkoracle.Sum{}
			type dir struct{ orig, resp uint64 }
			oriented := map[[2]netip.AddrPort]dir{}
			for _, r := range recs {
				tp := r.Tuple
				k := tsharkoracle.MakeKey(tp.Proto, tp.Src.Netip(tp.Family), tp.Dst.Netip(tp.Family), tp.SrcPort, tp.DstPort)
				c := got[k]
				c.Packets += r.Source.Packets + r.Destination.Packets
				got[k] = c
				if flow.HasPorts(tp.Proto) {
					o := [2]netip.AddrPort{netip.AddrPortFrom(tp.Src.Netip(tp.Family), tp.SrcPort), netip.AddrPortFrom(tp.Dst.Netip(tp.Family), tp.DstPort)}
					d := oriented[o]
					d.orig += r.Source.Packets
					d.resp += r.Destination.Packets
					oriented[o] = d
				}
			}
			want := map[tsharkoracle.Key]tsharkoracle.Sum{}
			for _, c := range conns {
				k := tsharkoracle.MakeKey(c.proto, c.orig.Addr(), c.resp.Addr(), c.orig.Port(), c.resp.Port())
				w := want[k]
				w.Packets += c.origPkts + c.respPkts
				want[k] = w
			}
			for k, w := range want {
				if got[k].Packets != w.Packets {
					t.Errorf("%v: zeek %d packets, table %d", k, w.Packets, got[k].Packets)
				}
			}
			for _, c := range conns {
				// Where Zeek saw the SYN, the initiator must agree.
				if c.proto == flow.ProtoTCP && strings.HasPrefix(c.history, "S") {
					d, ok := oriented[[2]netip.AddrPort{c.orig, c.resp}]
					if !ok || d.orig != c.origPkts || d.resp != c.respPkts {
						t.Errorf("%v -> %v: zeek orig/resp %d/%d, table %+v (found %v)", c.orig, c.resp, c.origPkts, c.respPkts, d, ok)
					}
				}
			}
		})
	}
}

type zeekConn struct {
	orig, resp         netip.AddrPort
	proto              uint8
	history            string
	origPkts, respPkts uint64
}

func readConnLog(t *testing.T, path string) []zeekConn {
	f, err := os.Open(path)
	if err != nil {
		testenv.SkipOrFail(t, err.Error())
	}
	defer f.Close()
	var fields []string
	var out []zeekConn
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		v := map[string]string{}
		for i, x := range strings.Split(line, "\t") {
			if i < len(fields) {
				v[fields[i]] = x
			}
		}
		op, _ := strconv.Atoi(v["id.orig_p"])
		rp, _ := strconv.Atoi(v["id.resp_p"])
		c := zeekConn{
			orig:    netip.AddrPortFrom(netip.MustParseAddr(v["id.orig_h"]), uint16(op)),
			resp:    netip.AddrPortFrom(netip.MustParseAddr(v["id.resp_h"]), uint16(rp)),
			history: v["history"],
		}
		c.origPkts, _ = strconv.ParseUint(v["orig_pkts"], 10, 64)
		c.respPkts, _ = strconv.ParseUint(v["resp_pkts"], 10, 64)
		switch v["proto"] {
		case "tcp":
			c.proto = flow.ProtoTCP
		case "udp":
			c.proto = flow.ProtoUDP
		case "icmp":
			c.proto = flow.ProtoICMP
			if c.orig.Addr().Is6() {
				c.proto = flow.ProtoICMPv6
			}
		default:
			p, _ := strconv.Atoi(v["ip_proto"])
			c.proto = uint8(p)
		}
		out = append(out, c)
	}
	return out
}
