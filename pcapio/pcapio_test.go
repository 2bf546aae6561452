package pcapio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

type pkt struct {
	ts      int64
	origLen int
	data    []byte
}

func readPcap(t *testing.T, rel string) ([]pkt, uint16) {
	t.Helper()
	f, err := os.Open(testenv.Pcap(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []pkt
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, uint16(r.LinkType())
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt{ci.Timestamp.UnixNano(), ci.Length, data})
	}
}

func mkBlock(t *testing.T, m block.Meta, pkts []pkt) *block.Block {
	t.Helper()
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var b block.Builder
	b.Reset(m)
	for _, p := range pkts {
		b.Append(p.ts, p.origLen, p.data)
	}
	eb, _, err := b.Encode(enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := block.Decode(eb)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type tagged struct {
	pkt
	blk, idx int
}

// TestMergeStable splits a real capture round-robin into blocks of
// distinct flows, adds a copy of the first block (every timestamp tied),
// and checks Merge against a stable sort by timestamp.
func TestMergeStable(t *testing.T) {
	pkts, lt := readPcap(t, "zeek/wikipedia.pcap")
	const n = 5
	parts := make([][]pkt, n)
	for i, p := range pkts {
		parts[i%n] = append(parts[i%n], p)
	}
	parts = append(parts, parts[0])
	var blocks []*block.Block
	var want []tagged
	for bi, part := range parts {
		m := block.Meta{LinkType: lt, SensorID: "s", Interface: "eth0"}
		m.FlowID[0] = byte(bi + 1)
		blocks = append(blocks, mkBlock(t, m, part))
		for i, p := range part {
			want = append(want, tagged{p, bi, i})
		}
	}
	sort.SliceStable(want, func(i, j int) bool { return want[i].ts < want[j].ts })
	var got []tagged
	err := Merge(blocks, func(b *block.Block, ts int64, ol int, data []byte) error {
		bi := slices.Index(blocks, b)
		got = append(got, tagged{pkt{ts, ol, data}, bi, 0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d packets merged, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.blk != w.blk || g.ts != w.ts || g.origLen != w.origLen || !bytes.Equal(g.data, w.data) {
			t.Fatalf("packet %d: block %d ts %d, want block %d ts %d", i, g.blk, g.ts, w.blk, w.ts)
		}
	}
}

// TestMergeChainsSeq gives the blocks of one flow out of Seq order: the
// flow comes out in Seq order.
func TestMergeChainsSeq(t *testing.T) {
	pkts, lt := readPcap(t, "zeek/get.pcap")
	m := block.Meta{LinkType: lt, SensorID: "s", Interface: "eth0", CommunityID: "1:x"}
	var blocks []*block.Block
	for i := 0; i*4 < len(pkts); i++ {
		m.Seq = uint32(i)
		blocks = append(blocks, mkBlock(t, m, pkts[i*4:min(len(pkts), i*4+4)]))
	}
	slices.Reverse(blocks)
	var got []pkt
	if err := Merge(blocks, func(b *block.Block, ts int64, ol int, data []byte) error {
		got = append(got, pkt{ts, ol, data})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pkts) {
		t.Fatalf("%d packets, want %d", len(got), len(pkts))
	}
	for i := range pkts {
		if got[i].ts != pkts[i].ts || !bytes.Equal(got[i].data, pkts[i].data) {
			t.Fatalf("packet %d out of order", i)
		}
	}
}

func TestPcapMixedLinkTypes(t *testing.T) {
	eth, lt1 := readPcap(t, "zeek/get.pcap")
	sll, lt2 := readPcap(t, "zeek/linux_dlt_sll2.pcap")
	blocks := []*block.Block{
		mkBlock(t, block.Meta{LinkType: lt1, SensorID: "s1", Interface: "eth0"}, eth),
		mkBlock(t, block.Meta{LinkType: lt2, SensorID: "s2", Interface: "any"}, sll),
	}
	var buf bytes.Buffer
	if _, err := WriteBlocks(&buf, FormatPcap, blocks); !errors.Is(err, ErrLinkType) || buf.Len() != 0 {
		t.Fatalf("pcap of two link types: %v, %d bytes written", err, buf.Len())
	}
	p, err := NewPcap(&buf, lt1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WritePacket(Interface{LinkType: lt2}, 1, 10, make([]byte, 10)); !errors.Is(err, ErrLinkType) {
		t.Fatalf("WritePacket of another link type: %v", err)
	}
}

// TestPcapNGInterfaces writes blocks of two sensors and link types and
// checks with tshark that every packet names its sensor and interface.
func TestPcapNGInterfaces(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	eth, lt1 := readPcap(t, "zeek/get.pcap")
	sll, lt2 := readPcap(t, "zeek/linux_dlt_sll2.pcap")
	blocks := []*block.Block{
		mkBlock(t, block.Meta{LinkType: lt1, SensorID: "s1", Interface: "eth0"}, eth),
		mkBlock(t, block.Meta{LinkType: lt2, SensorID: "s2", Interface: "any"}, sll),
		mkBlock(t, block.Meta{LinkType: lt1, SensorID: "s2", Interface: "eth0"}, eth[:3]),
	}
	out := filepath.Join(t.TempDir(), "x.pcapng")
	f, _ := os.Create(out)
	st, err := WriteBlocks(f, FormatPcapNG, blocks)
	f.Close()
	if err != nil || st.Packets != len(eth)+len(sll)+3 {
		t.Fatalf("WriteBlocks: %v %+v", err, st)
	}
	res, err := exec.Command(tshark, "-r", out, "-T", "fields", "-e", "frame.interface_name",
		"-e", "frame.interface_description", "-e", "frame.len").Output()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		parts := strings.Split(l, "\t")
		count[parts[0]]++
		if !strings.Contains(parts[1], parts[0][:2]) {
			t.Fatalf("description %q does not name sensor of %q", parts[1], parts[0])
		}
	}
	want := map[string]int{"s1:eth0": len(eth), "s2:any": len(sll), "s2:eth0": 3}
	if len(count) != len(want) {
		t.Fatalf("interfaces %v, want %v", count, want)
	}
	for k, v := range want {
		if count[k] != v {
			t.Fatalf("interfaces %v, want %v", count, want)
		}
	}
}

func TestEmptyOutputs(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	for _, f := range []Format{FormatPcap, FormatPcapNG} {
		out := filepath.Join(t.TempDir(), "empty."+string(f))
		fh, _ := os.Create(out)
		if _, err := WriteBlocks(fh, f, nil); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		res, err := exec.Command(tshark, "-r", out, "-T", "fields", "-e", "frame.number").Output()
		if err != nil || len(res) != 0 {
			t.Fatalf("%s: tshark on empty output: %v %s", f, err, res)
		}
	}
}
