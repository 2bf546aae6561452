package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/collector/inspect/inspecttest"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// listAnswer is a packet list answer.
type listAnswer struct {
	Flow    string       `json:"flow"`
	Packets []packetInfo `json:"packets"`
	More    bool         `json:"more"`
}

// tsharkPacket is one line of the oracle's packet list.
type tsharkPacket struct {
	time           string // frame.time_epoch, 9 decimals
	length, caplen int
	src            string // ip:port of the sender
}

// tsharkPackets lists a capture's TCP and UDP packets (ICMP errors left
// out) by conversation: "proto|lowest ip:port|highest ip:port" ->
// packets in capture order.
func tsharkPackets(t *testing.T, path string) map[string][]tsharkPacket {
	t.Helper()
	lines := tsharkoracle.Lines(t, "-r", path, "-Y", "(tcp || udp) && !icmp && !icmpv6", "-T", "fields",
		"-E", "occurrence=l", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len",
		"-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport")
	by := map[string][]tsharkPacket{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		src, dst := f[3], f[4]
		if src == "" {
			src, dst = "["+f[5]+"]", "["+f[6]+"]"
		}
		proto, sp, dp := "tcp", f[7], f[8]
		if sp == "" {
			proto, sp, dp = "udp", f[9], f[10]
		}
		n, _ := strconv.Atoi(f[1])
		c, _ := strconv.Atoi(f[2])
		a, b := src+":"+sp, dst+":"+dp
		k := convKey(proto, a, b)
		by[k] = append(by[k], tsharkPacket{time: f[0], length: n, caplen: c, src: a})
	}
	return by
}

func convKey(proto, a, b string) string {
	if a > b {
		a, b = b, a
	}
	return proto + "|" + a + "|" + b
}

// endpoint writes one side of a tuple as tsharkPackets does.
func endpoint(tu flow.Tuple, src bool) string {
	a, p := tu.Dst.Netip(tu.Family), tu.DstPort
	if src {
		a, p = tu.Src.Netip(tu.Family), tu.SrcPort
	}
	if tu.Family == flow.FamilyIPv6 {
		return "[" + a.String() + "]:" + strconv.Itoa(int(p))
	}
	return a.String() + ":" + strconv.Itoa(int(p))
}

// epoch writes a time as tshark's frame.time_epoch.
func epoch(ts time.Time) string {
	return fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond())
}

func getJSON(t *testing.T, ts *testServer, token, path string, v any) *http.Response {
	t.Helper()
	resp, body := ts.get(t, token, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	return resp
}

// TestInspectPacketListMatchesTshark: for every TCP and UDP flow of
// several shared captures, stored as a sensor sends them, the packet
// list equals tshark's selection of the flow in count, times, lengths
// and direction (the record's source is the client).
func TestInspectPacketListMatchesTshark(t *testing.T) {
	for _, rel := range []string{"zeek/get.pcap", "zeek/wikipedia.pcap", "arkime/dns-udp.pcap", "zeek/http-vlan-0.pcap",
		"community-id-spec/ipv6.pcap", "zeek/reassembly.pcap", "arkime/dns-tcp.pcap", "suricata-verify/community-id-ipv6/input.pcap",
		"suricata-verify/community-id-ipv4/input.pcap", "zeek/ssh.pcap"} {
		t.Run(rel, func(t *testing.T) {
			c, ts, _ := setup(t, rel, []string{"s1"}, nil)
			want := tsharkPackets(t, c.path)
			flows := 0
			for _, cf := range c.flows {
				tu := cf.rec.Tuple
				if tu.Proto != 6 && tu.Proto != 17 {
					continue
				}
				client := endpoint(tu, true)
				w := want[convKey(flow.ProtoName(tu.Proto), client, endpoint(tu, false))]
				var got listAnswer
				getJSON(t, ts, tokAlice, "/api/v1/flows/"+cf.rec.ID.String()+"/packets?limit=10000", &got)
				if got.More || len(got.Packets) != len(w) {
					t.Fatalf("flow %s (%s): %d packets (more %v), tshark %d", cf.rec.ID, tu, len(got.Packets), got.More, len(w))
				}
				for i, p := range got.Packets {
					dir := "s2c"
					if w[i].src == client {
						dir = "c2s"
					}
					if p.N != i+1 || epoch(p.Time) != w[i].time || p.Length != w[i].length || p.Captured != w[i].caplen || p.Dir != dir {
						t.Fatalf("flow %s packet %d: %+v, tshark %+v (%s)", cf.rec.ID, i+1, p, w[i], dir)
					}
					if p.Summary == "" {
						t.Fatalf("flow %s packet %d: no summary", cf.rec.ID, i+1)
					}
				}
				flows++
			}
			if flows == 0 {
				t.Fatal("no flow compared")
			}
			t.Logf("%d flows' packet lists equal tshark's", flows)
		})
	}
}

// TestInspectPacketListLimitAndCommunityID: a limit cuts the list (more
// true); a Community ID merges the instances two sensors stored, in time
// order, as the pcap download does.
func TestInspectPacketListLimitAndCommunityID(t *testing.T) {
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1", "s2"}, nil)
	cid := c.flows[0].rec.CommunityID
	var all listAnswer
	getJSON(t, ts, tokAlice, "/api/v1/flows/"+url.PathEscape(cid)+"/packets", &all)
	if all.More || len(all.Packets) != c.packets || all.Flow != cid {
		t.Fatalf("community id list: %d packets (more %v) of %d, flow %q", len(all.Packets), all.More, c.packets, all.Flow)
	}
	for i := 1; i < len(all.Packets); i++ {
		if all.Packets[i].Time.Before(all.Packets[i-1].Time) {
			t.Fatalf("packet %d before packet %d", i+1, i)
		}
	}
	var cut listAnswer
	getJSON(t, ts, tokAlice, "/api/v1/flows/"+url.PathEscape(cid)+"/packets?limit=5", &cut)
	if !cut.More || len(cut.Packets) != 5 {
		t.Fatalf("limit 5: %d packets, more %v", len(cut.Packets), cut.More)
	}
	for i := range cut.Packets {
		if cut.Packets[i] != all.Packets[i] {
			t.Fatalf("limited list packet %d %+v, full list %+v", i+1, cut.Packets[i], all.Packets[i])
		}
	}
}

// TestInspectPacketBytesMatchTshark: packet n of a flow carries the
// bytes of the n-th packet tshark selects for the flow, and its layers.
func TestInspectPacketBytesMatchTshark(t *testing.T) {
	c, ts, _ := setup(t, "zeek/wikipedia.pcap", []string{"s1"}, nil)
	checked := 0
	for _, cf := range c.flows[:min(len(c.flows), 6)] {
		sel := filepath.Join(t.TempDir(), "sel.pcap")
		tsharkSelect(t, c.path, cf.rec.Tuple, sel)
		want := testenv.Frames(t, sel)
		for _, n := range []int{1, len(want)} {
			var got packetDetail
			getJSON(t, ts, tokAlice, fmt.Sprintf("/api/v1/flows/%s/packets/%d", cf.rec.ID, n), &got)
			if string(got.Data) != string(want[n-1]) || got.Captured != len(want[n-1]) || got.N != n {
				t.Fatalf("flow %s packet %d: %d bytes differ from tshark's %d", cf.rec.ID, n, len(got.Data), len(want[n-1]))
			}
			if len(got.Layers) < 3 || got.Layers[0].Name != "Frame" || got.Layers[1].Name != "Ethernet" {
				t.Fatalf("flow %s packet %d layers: %+v", cf.rec.ID, n, got.Layers)
			}
			checked++
		}
		resp, body := ts.get(t, tokAlice, fmt.Sprintf("/api/v1/flows/%s/packets/%d", cf.rec.ID, len(want)+1))
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("packet past the end: %d %s", resp.StatusCode, body)
		}
	}
	t.Logf("%d packets equal tshark's bytes", checked)
}

// streamAnswer is a Follow Stream answer in JSON.
type streamAnswer struct {
	Client      string `json:"client"`
	Server      string `json:"server"`
	Chunks      []streamChunk
	ClientBytes int64 `json:"client_bytes"`
	ServerBytes int64 `json:"server_bytes"`
	Complete    bool  `json:"complete"`
}

// TestInspectStreamMatchesTshark: for every TCP flow with payload of the
// HTTP captures (and a capture with a gap the receiver acknowledged),
// Follow Stream's ascii form equals the body of `tshark -q -z
// follow,tcp,ascii,A,B` on the original capture, and its JSON form holds
// the same chunks.
func TestInspectStreamMatchesTshark(t *testing.T) {
	for _, rel := range []string{"zeek/get.pcap", "zeek/http-vlan-0.pcap", "zeek/wikipedia.pcap", "zeek/reassembly.pcap",
		"arkime/dns-udp.pcap"} {
		t.Run(rel, func(t *testing.T) {
			c, ts, _ := setup(t, rel, []string{"s1"}, nil)
			compared := 0
			for _, cf := range c.flows {
				tu := cf.rec.Tuple
				if (tu.Proto != 6 && tu.Proto != 17) || cf.rec.Source.StoredBytes+cf.rec.Destination.StoredBytes == 0 {
					continue
				}
				proto := flow.ProtoName(tu.Proto)
				want := inspecttest.Follow(t, c.path, proto, endpoint(tu, true), endpoint(tu, false))
				resp, got := ts.get(t, tokAlice, "/api/v1/flows/"+cf.rec.ID.String()+"/stream?format=ascii")
				if resp.StatusCode != http.StatusOK || string(got) != want {
					t.Fatalf("flow %s %s: %d, stream differs from tshark\ngot:\n%.2000s\nwant:\n%.2000s", cf.rec.ID, tu, resp.StatusCode, got, want)
				}
				var js streamAnswer
				getJSON(t, ts, tokAlice, "/api/v1/flows/"+cf.rec.ID.String()+"/stream", &js)
				if js.Client != endpoint(tu, true) || js.Server != endpoint(tu, false) || !js.Complete {
					t.Fatalf("flow %s: client %s server %s complete %v", cf.rec.ID, js.Client, js.Server, js.Complete)
				}
				if a := renderASCII(js); a != want {
					t.Fatalf("flow %s: JSON chunks render differently from tshark:\n%.2000s", cf.rec.ID, a)
				}
				compared++
			}
			if compared == 0 {
				t.Fatal("no flow compared")
			}
			t.Logf("%d flows' streams equal tshark's", compared)
		})
	}
}

// renderASCII renders JSON chunks as tshark's ascii body, and checks
// the byte counts.
func renderASCII(js streamAnswer) string {
	var b strings.Builder
	var cb, sb int64
	for _, ch := range js.Chunks {
		if ch.Dir == "s2c" {
			b.WriteByte('\t')
			if !ch.Missing {
				sb += int64(len(ch.Data))
			}
		} else if !ch.Missing {
			cb += int64(len(ch.Data))
		}
		fmt.Fprintf(&b, "%d\n", len(ch.Data))
		for _, x := range ch.Data {
			if x == '\r' || x == '\n' || (x >= 0x20 && x < 0x7f) {
				b.WriteByte(x)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	if cb != js.ClientBytes || sb != js.ServerBytes {
		return fmt.Sprintf("byte counts %d/%d, chunks hold %d/%d", js.ClientBytes, js.ServerBytes, cb, sb)
	}
	return b.String()
}

// TestInspectAgreesWithPcap: the packet list and the pcap download walk
// the same packets (one iterator): for a window cutting blocks in the
// middle, with a Community ID over two sensors, both hold the same
// packets in the same order.
func TestInspectAgreesWithPcap(t *testing.T) {
	c, ts, _ := setup(t, "zeek/wikipedia.pcap", []string{"s1", "s2"}, nil)
	compared := 0
	for _, cf := range c.flows {
		rec := cf.rec
		if rec.Tuple.Proto != 6 {
			continue
		}
		mid := rec.Start.Add(rec.End.Sub(rec.Start) / 3)
		q := "?from=" + epoch(mid) + "&to=" + epoch(rec.End)
		base := "/api/v1/flows/" + url.PathEscape(rec.CommunityID)
		resp, body := ts.get(t, tokAlice, "/api/v1/pcap"+q+"&flow="+url.QueryEscape(rec.CommunityID))
		if resp.StatusCode == http.StatusNotFound {
			continue // no packet in the window
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("pcap %s: %d %s", rec.CommunityID, resp.StatusCode, body)
		}
		r, err := pcapgo.NewReader(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		var list listAnswer
		getJSON(t, ts, tokAlice, base+"/packets"+q, &list)
		for i := 0; ; i++ {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				if i != len(list.Packets) {
					t.Fatalf("flow %s: pcap %d packets, list %d", rec.CommunityID, i, len(list.Packets))
				}
				compared += i
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if i >= len(list.Packets) {
				t.Fatalf("flow %s: the list stops at %d packets, the pcap goes on", rec.CommunityID, i)
			}
			p := list.Packets[i]
			if !p.Time.Equal(ci.Timestamp) || p.Length != ci.Length || p.Captured != len(data) {
				t.Fatalf("flow %s packet %d: list %+v, pcap %v %d %d", rec.CommunityID, i+1, p, ci.Timestamp, ci.Length, len(data))
			}
		}
	}
	if compared == 0 {
		t.Fatal("no packet compared")
	}
	t.Logf("%d packets alike in both answers", compared)
}
