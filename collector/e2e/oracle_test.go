package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testdata"
)

// frame is one packet as tshark (metadata, flow membership) and tcpdump or
// tshark (bytes) read it.
type frame struct {
	num      int
	epoch    string // frame.time_epoch as tshark prints it
	length   int    // frame.len
	capLen   int    // frame.cap_len
	cid      string // Community ID of the flow it belongs to ("" = not IP)
	tuple    string // the 5-tuple, for messages
	nonFirst bool   // a non-first IP fragment (joined to its datagram's flow)
	data     []byte
}

func (f *frame) String() string {
	return fmt.Sprintf("#%d %s len %d caplen %d", f.num, f.epoch, f.length, f.capLen)
}

var tsharkFields = []string{
	"frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols",
	"ip.src", "ip.dst", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.nxt",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
	"icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
	"ip.id", "ip.frag_offset", "ip.flags.mf", "ipv6.fraghdr.ident", "ipv6.fraghdr.offset",
	"ipv6.fraghdr.nxt", "ipv6.hopopts.nxt", "ipv6.dstopts.nxt", "ipv6.routing.nxt",
}

// tsharkMeta reads every frame's metadata and assigns it to a flow by
// Community ID, from tshark's fields with IP reassembly off (each fragment
// is its own frame). The flow's addresses and protocol are those of the
// outermost IP header (tapir keys tunnels on their outer header), ports
// those of a transport header directly inside it, ICMP type and code in
// place of ports. A non-first fragment belongs to its datagram's flow:
// ports from the first fragment with the same addresses, protocol and IP
// ID. ok is false when tshark failed (a damaged file): the frames it
// printed before the damage are returned.
func tsharkMeta(t testing.TB, path string) (frames []frame, ok bool) {
	t.Helper()
	args := []string{"-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(testdata.Tool(t, "tshark"), args...).Output()
	ok = err == nil
	type fragID struct {
		proto    uint8
		src, dst netip.Addr
		id       string
	}
	type pending struct {
		idx int
		fid fragID
		tup flow.Tuple
	}
	ports := map[fragID][2]uint16{}
	var later []pending
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < len(tsharkFields) {
			f = append(f, "")
		}
		get := func(name string) string {
			for i, n := range tsharkFields {
				if n == name {
					return f[i]
				}
			}
			panic(name)
		}
		fr := frame{num: atoi(get("frame.number")), epoch: get("frame.time_epoch"),
			length: atoi(get("frame.len")), capLen: atoi(get("frame.cap_len"))}
		// The outermost network layer, from the protocol stack.
		outer := ""
		for _, p := range strings.Split(get("frame.protocols"), ":") {
			if p == "ip" || p == "ipv6" {
				outer = p
				break
			}
		}
		var src, dst netip.Addr
		var proto uint8
		var fid *fragID
		first := true
		switch {
		case outer == "ip" && get("ip.src") != "":
			src, dst = netip.MustParseAddr(get("ip.src")), netip.MustParseAddr(get("ip.dst"))
			proto = uint8(atoi(get("ip.proto")))
			off := atoi(get("ip.frag_offset"))
			if off != 0 || get("ip.flags.mf") == "1" || get("ip.flags.mf") == "True" {
				fid = &fragID{proto, src, dst, get("ip.id")}
				first = off == 0
			}
		case outer == "ipv6" && get("ipv6.src") != "":
			src, dst = netip.MustParseAddr(get("ipv6.src")), netip.MustParseAddr(get("ipv6.dst"))
			proto = uint8(atoi(get("ipv6.nxt")))
			for range 8 { // walk the extension headers
				switch proto {
				case 0:
					proto = uint8(atoi(get("ipv6.hopopts.nxt")))
				case 60:
					proto = uint8(atoi(get("ipv6.dstopts.nxt")))
				case 43:
					proto = uint8(atoi(get("ipv6.routing.nxt")))
				case 44:
					proto = uint8(atoi(get("ipv6.fraghdr.nxt")))
					fid = &fragID{proto, src, dst, get("ipv6.fraghdr.ident")}
					first = atoi(get("ipv6.fraghdr.offset")) == 0
				}
			}
		default:
			frames = append(frames, fr) // not IP: a link-layer pseudo flow
			continue
		}
		var sport, dport uint16
		switch proto {
		case flow.ProtoTCP:
			sport, dport = uint16(atoi(get("tcp.srcport"))), uint16(atoi(get("tcp.dstport")))
		case flow.ProtoUDP:
			sport, dport = uint16(atoi(get("udp.srcport"))), uint16(atoi(get("udp.dstport")))
		case flow.ProtoSCTP:
			sport, dport = uint16(atoi(get("sctp.srcport"))), uint16(atoi(get("sctp.dstport")))
		case flow.ProtoICMP:
			sport, dport = uint16(atoi(get("icmp.type"))), uint16(atoi(get("icmp.code")))
		case flow.ProtoICMPv6:
			sport, dport = uint16(atoi(get("icmpv6.type"))), uint16(atoi(get("icmpv6.code")))
		}
		var tup flow.Tuple
		var fam uint8
		tup.Src, fam = flow.AddrFromNetip(src)
		tup.Dst, _ = flow.AddrFromNetip(dst)
		tup.Family, tup.Proto, tup.SrcPort, tup.DstPort = fam, proto, sport, dport
		if fid != nil && first {
			ports[*fid] = [2]uint16{sport, dport}
		}
		if fid != nil && !first {
			fr.nonFirst = true
			later = append(later, pending{len(frames), *fid, tup})
		} else {
			fr.cid, fr.tuple = flow.CommunityID(0, tup), tup.String()
		}
		frames = append(frames, fr)
	}
	for _, p := range later {
		tup := p.tup
		if pp, ok := ports[p.fid]; ok {
			tup.SrcPort, tup.DstPort = pp[0], pp[1]
		} else {
			tup.SrcPort, tup.DstPort = 0, 0 // datagram without its first fragment
		}
		frames[p.idx].cid, frames[p.idx].tuple = flow.CommunityID(0, tup), tup.String()
	}
	return frames, ok
}

func atoi(s string) int {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	n, _ := strconv.ParseInt(s, 0, 64)
	return int(n)
}

// frameBytes returns every frame's captured bytes in file order, from
// tcpdump -xx, or from tshark's raw frame (-T ek -x) for files tcpdump
// cannot read (pcapng with several link types). want is the frame count
// tshark reported.
func frameBytes(t testing.TB, path string, want int) [][]byte {
	t.Helper()
	out, _ := exec.Command(testdata.Tool(t, "tcpdump"), "-r", path, "-nn", "-tt", "-xx").Output()
	if got := parseTcpdumpHex(out); len(got) == want {
		return got
	}
	out, _ = exec.Command(testdata.Tool(t, "tshark"), "-r", path, "-T", "ek", "-x", "-j", "frame").Output()
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var doc struct {
			Layers struct {
				FrameRaw string `json:"frame_raw"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil || !strings.Contains(sc.Text(), `"layers"`) {
			continue
		}
		b, err := hex.DecodeString(doc.Layers.FrameRaw)
		if err != nil {
			t.Fatalf("tshark frame_raw of %s: %v", path, err)
		}
		res = append(res, b)
	}
	return res
}

// parseTcpdumpHex collects the hex lines ("\t0x0010:  0040 df8e ...")
// of tcpdump -xx output; a line starting with a timestamp starts a packet.
func parseTcpdumpHex(out []byte) [][]byte {
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] >= '0' && line[0] <= '9' {
			res = append(res, []byte{})
			continue
		}
		if !strings.HasPrefix(line, "\t0x") || len(res) == 0 {
			continue
		}
		_, hexPart, ok := strings.Cut(line, ":  ")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexPart), " ", ""))
		if err != nil {
			return nil
		}
		res[len(res)-1] = append(res[len(res)-1], b...)
	}
	return res
}

// readFrames returns the frames of a capture with metadata and bytes.
func readFrames(t testing.TB, path string) ([]frame, bool) {
	t.Helper()
	frames, ok := tsharkMeta(t, path)
	data := frameBytes(t, path, len(frames))
	if len(data) < len(frames) {
		t.Errorf("%s: tshark read %d frames, the byte dump %d", path, len(frames), len(data))
		frames = frames[:len(data)]
	}
	for i := range frames {
		frames[i].data = data[i]
	}
	return frames, ok
}
