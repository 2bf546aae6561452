package console

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// tshark runs tshark and returns its standard output.
func tshark(tb testing.TB, args ...string) string {
	tb.Helper()
	return string(run(tb, testenv.Tool(tb, "tshark"), args...))
}

// tsharkCommunityIDs returns the Community IDs of the frames of a capture
// that a display filter selects.
func tsharkCommunityIDs(tb testing.TB, pcap, filter string) map[string]bool {
	tb.Helper()
	out := tshark(tb, "-r", pcap, "--enable-protocol", "communityid", "-Y", filter, "-T", "fields", "-e", "communityid")
	ids := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids[l] = true
		}
	}
	return ids
}

// frame is one packet as tshark lists it.
type frame struct {
	time     time.Time
	length   int    // frame.len (on the wire)
	captured int    // frame.cap_len
	proto    string // tshark's Protocol column
	info     string // tshark's Info column
}

// tsharkFrames lists the frames of one flow (by Community ID) in capture
// order.
func tsharkFrames(tb testing.TB, pcap, cid string) []frame {
	tb.Helper()
	out := tshark(tb, "-r", pcap, "--enable-protocol", "communityid", "-Y", fmt.Sprintf("communityid == %q", cid),
		"-T", "fields", "-E", "separator=\t", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
	var fs []frame
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		c := strings.SplitN(l, "\t", 5)
		if len(c) < 5 {
			continue
		}
		sec, frac, _ := strings.Cut(c[0], ".")
		s, _ := strconv.ParseInt(sec, 10, 64)
		ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		n, _ := strconv.Atoi(c[1])
		cp, _ := strconv.Atoi(c[2])
		fs = append(fs, frame{time: time.Unix(s, ns).UTC(), length: n, captured: cp, proto: c[3], info: c[4]})
	}
	return fs
}

// tsharkFollowASCII returns the body of `tshark -q -z follow,tcp,ascii,A,B`
// (the chunks, without the ==== banner and the Follow/Filter/Node lines).
func tsharkFollowASCII(tb testing.TB, pcap, client, server string) string {
	tb.Helper()
	out := tshark(tb, "-r", pcap, "-q", "-z", "follow,tcp,ascii,"+client+","+server)
	const banner = "===================================================================\n"
	i := strings.Index(out, "Node 1: ")
	j := strings.LastIndex(out, banner)
	if i < 0 || j < i {
		tb.Fatalf("unexpected tshark follow output:\n%s", out)
	}
	body := out[i:j]
	return body[strings.IndexByte(body, '\n')+1:]
}

// followASCII renders chunks as tshark's follow,tcp,ascii body does: each
// chunk is its length (indented by a tab for the server) on a line, then
// its bytes with everything but printable ASCII, CR and LF shown as '.',
// then a newline.
func followASCII(chunks []chunk) string {
	var b strings.Builder
	for _, c := range chunks {
		if c.dir == "s2c" {
			b.WriteByte('\t')
		}
		fmt.Fprintf(&b, "%d\n", len(c.data))
		for _, x := range c.data {
			if x == '\r' || x == '\n' || (x >= 0x20 && x < 0x7f) {
				b.WriteByte(x)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// chunk is one direction's run of payload in a Follow Stream view.
type chunk struct {
	dir  string // "c2s" or "s2c"
	data []byte
}

// tsharkSelect writes the frames of one flow to a new pcap file.
func tsharkSelect(tb testing.TB, pcap, cid, out string) {
	tb.Helper()
	tshark(tb, "-r", pcap, "--enable-protocol", "communityid", "-Y", fmt.Sprintf("communityid == %q", cid), "-F", "pcap", "-w", out)
}

// packet is one packet of a capture file.
type packet struct {
	ts      time.Time
	origLen int
	data    []byte
}

// readCapture reads every packet of a pcap or pcapng file.
func readCapture(tb testing.TB, path string) []packet {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var r interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	if bytes.HasPrefix(b, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err = pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	} else {
		r, err = pcapgo.NewReader(bytes.NewReader(b))
	}
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	var pkts []packet
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return pkts
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		pkts = append(pkts, packet{ts: ci.Timestamp.UTC(), origLen: ci.Length, data: data})
	}
}

// samePackets compares two packet lists: same bytes, lengths and times
// (to the microsecond, the precision of the original captures).
func samePackets(tb testing.TB, what string, got, want []packet) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("%s: %d packets, tshark's selection has %d", what, len(got), len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.ts.Truncate(time.Microsecond).Equal(w.ts.Truncate(time.Microsecond)) || g.origLen != w.origLen || !bytes.Equal(g.data, w.data) {
			tb.Errorf("%s: packet %d differs: %v len %d (%d bytes) vs tshark %v len %d (%d bytes)",
				what, i+1, g.ts, g.origLen, len(g.data), w.ts, w.origLen, len(w.data))
		}
	}
}
