package block

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func TestDefaultsValidate(t *testing.T) {
	if err := DefaultEncoderConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultDirWriterConfig()
	c.Dir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func newEncoder(t testing.TB, l Level) *Encoder {
	enc, err := NewEncoder(EncoderConfig{Level: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

// TestBuilderRoundTrip encodes the packets of real captures per flow and
// checks that decoding gives back every packet, meta included.
func TestBuilderRoundTrip(t *testing.T) {
	for _, rel := range []string{"zeek/ssh.pcap", "zeek/wikipedia.pcap", "tcpdump/gso-ipv6.pcap", "zeek/reassembly.pcap"} {
		t.Run(rel, func(t *testing.T) {
			pkts := loadCapture(t, rel)
			for _, cfg := range []EncoderConfig{{Level: SpeedFastest}, {Level: SpeedDefault}, {Level: SpeedFastest, S2: true},
				{Level: SpeedFastest, NoDelta: true}, {Level: SpeedFastest, S2: true, NoDelta: true}} {
				enc, err := NewEncoder(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer enc.Close()
				blocks := encodeGrouped(t, enc, pkts, 16<<10)
				codecs := map[byte]int{}
				delta := 0
				for _, eb := range blocks {
					codecs[eb[5]&codecMask]++
					if eb[5]&flagDelta != 0 {
						delta++
					}
				}
				if cfg.S2 && codecs[codecS2] == 0 && rel != "zeek/ssh.pcap" {
					t.Fatalf("no block used S2: codecs %v", codecs)
				}
				if want := len(blocks); cfg.NoDelta && delta != 0 || !cfg.NoDelta && delta != want {
					t.Fatalf("%d of %d blocks delta coded, config %+v", delta, want, cfg)
				}
				// Expected per group sequences, from the capture.
				want := map[uint64][]testPacket{}
				for _, p := range pkts {
					want[p.group] = append(want[p.group], p)
				}
				got := map[uint64][]testPacket{}
				groupOf := map[string]uint64{}
				total := 0
				for _, eb := range blocks {
					m, n, err := ParseMeta(eb)
					if err != nil || n != len(eb) {
						t.Fatalf("ParseMeta: %v, %d of %d", err, n, len(eb))
					}
					b, err := Decode(eb)
					if err != nil {
						t.Fatal(err)
					}
					if b.Meta != m {
						t.Fatalf("ParseMeta %+v != Decode %+v", m, b.Meta)
					}
					r := b.Reader()
					var first testPacket
					var pk []testPacket
					for {
						ts, ol, data, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						pk = append(pk, testPacket{ts: ts, origLen: ol, data: data})
					}
					if len(pk) != int(m.Packets) || pk[0].ts != m.First || pk[len(pk)-1].ts != m.Last {
						t.Fatalf("meta %+v does not match %d packets", m, len(pk))
					}
					first = pk[0]
					// Find the group by the first packet of Seq 0 blocks.
					key := string(first.data) + string(rune(first.ts))
					g, ok := groupOf[key]
					if !ok {
						for _, p := range pkts {
							if p.ts == first.ts && bytes.Equal(p.data, first.data) {
								g = p.group
								break
							}
						}
						groupOf[key] = g
					}
					got[g] = append(got[g], pk...)
					total += len(pk)
				}
				if total != len(pkts) {
					t.Fatalf("decoded %d packets of %d", total, len(pkts))
				}
				for g, w := range want {
					gp := got[g]
					if len(gp) != len(w) {
						t.Fatalf("group %x: %d packets, want %d", g, len(gp), len(w))
					}
					for i := range w {
						if gp[i].ts != w[i].ts || gp[i].origLen != w[i].origLen || !bytes.Equal(gp[i].data, w[i].data) {
							t.Fatalf("group %x packet %d differs", g, i)
						}
					}
				}
			}
		})
	}
}

func TestMetaFieldsRoundTrip(t *testing.T) {
	pkts := loadCapture(t, "community-id-spec/tcp.pcap")
	m := Meta{
		Key:         flow.Key{PortA: 34855, PortB: 80, Proto: 6, Family: 4, VLAN: 12, InnerVLAN: 13},
		FlowID:      flow.NewID(timeOf(pkts[0].ts), 7, 9),
		CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", SensorID: "sensor-a", Interface: "eth1",
		LinkType: 1, Seq: 3,
	}
	m.Key.A[15], m.Key.B[15] = 1, 2
	var b Builder
	b.Reset(m)
	for _, p := range pkts {
		b.Append(p.ts, p.origLen, p.data)
	}
	eb, got, err := b.Encode(newEncoder(t, SpeedFastest), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.First, m.Last, m.Packets = pkts[0].ts, pkts[len(pkts)-1].ts, uint32(len(pkts))
	for _, p := range pkts {
		m.Bytes += uint64(len(p.data))
	}
	if got != m {
		t.Fatalf("Encode meta %+v, want %+v", got, m)
	}
	d, err := Decode(eb)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta != m {
		t.Fatalf("decoded meta %+v, want %+v", d.Meta, m)
	}
	if _, _, err := b.Encode(newEncoder(t, SpeedFastest), nil); err != nil {
		t.Fatal("Encode must not reset the builder:", err)
	}
	var empty Builder
	if _, _, err := empty.Encode(newEncoder(t, SpeedFastest), nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty Encode: %v", err)
	}
}

// TestCorruptBlocks flips every byte and cuts at every length of real
// encoded blocks: decoding must fail with one of the sentinel errors and
// never panic.
func TestCorruptBlocks(t *testing.T) {
	pkts := loadCapture(t, "zeek/get.pcap")
	blocks := encodeGrouped(t, newEncoder(t, SpeedFastest), pkts, 2<<10)
	sentinels := []error{ErrCorrupt, ErrChecksum, ErrVersion, ErrMagic, ErrShort, ErrTooLarge}
	isSentinel := func(err error) bool {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
	for bi, eb := range blocks[:min(len(blocks), 3)] {
		for i := range eb {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				c := slices.Clone(eb)
				c[i] ^= x
				_, err := Decode(c)
				if err == nil {
					t.Fatalf("block %d: flipping byte %d by %#x decoded fine", bi, i, x)
				}
				if !isSentinel(err) {
					t.Fatalf("block %d byte %d: error %v wraps no sentinel", bi, i, err)
				}
			}
		}
		for n := range len(eb) {
			_, err := Decode(eb[:n])
			if err == nil || !isSentinel(err) {
				t.Fatalf("block %d cut to %d bytes: %v", bi, n, err)
			}
		}
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	pkts := loadCapture(t, "zeek/ssh.pcap")
	var b Builder
	b.Reset(Meta{})
	for _, p := range pkts[:200] {
		b.Append(p.ts, p.origLen, p.data)
	}
	enc := newEncoder(t, SpeedFastest)
	dst := make([]byte, 0, 1<<20)
	allocs := testing.AllocsPerRun(20, func() {
		b.Reset(Meta{SensorID: "s"})
		for _, p := range pkts[:200] {
			b.Append(p.ts, p.origLen, p.data)
		}
		var err error
		if dst, _, err = b.Encode(enc, dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per warmed Reset+200 Append+Encode, want 0", allocs)
	}
}

// TestBuilderGrowsByDoubling: a builder's buffer at least doubles when it
// grows (from minBuffer), so a block on its way to 128 KiB is copied a
// handful of times, not the ~20 of append's 1.25x steps.
func TestBuilderGrowsByDoubling(t *testing.T) {
	pkts := loadCapture(t, "zeek/ssh.pcap")
	var b Builder
	b.Reset(Meta{})
	grows, last := 0, 0
	for i := 0; b.Len() < 128<<10; i++ {
		p := pkts[i%len(pkts)]
		b.Append(p.ts, p.origLen, p.data)
		if b.Cap() != last {
			if last != 0 && b.Cap() < 2*last {
				t.Fatalf("buffer grew from %d to %d bytes, want at least double", last, b.Cap())
			}
			grows++
			last = b.Cap()
		}
	}
	if last < minBuffer || grows > 7 { // 4 KiB -> 256 KiB
		t.Fatalf("%d growths to %d bytes for a %d-byte body", grows, last, b.Len())
	}
}

func writeSegments(t *testing.T, dir string, blocks [][]byte, segSize int64) DirWriterStats {
	w, err := NewDirWriter(DirWriterConfig{Dir: dir, SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := w.Write(blocks[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	return w.Stats()
}

func readAll(t *testing.T, dir string) ([][]byte, ReadStats) {
	var got [][]byte
	st, err := ReadDir(dir, func(m Meta, b *Block) error {
		got = append(got, slices.Clone(b.Body()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

func bodies(t *testing.T, blocks [][]byte) [][]byte {
	var out [][]byte
	for _, eb := range blocks {
		b, err := Decode(eb)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Body())
	}
	return out
}

func TestDirWriterReader(t *testing.T) {
	pkts := loadCapture(t, "zeek/ssh.pcap")
	blocks := encodeGrouped(t, newEncoder(t, SpeedFastest), pkts, 8<<10)
	dir := t.TempDir()
	ws := writeSegments(t, dir, blocks, 64<<10)
	if ws.Blocks != uint64(len(blocks)) || ws.Segments < 2 {
		t.Fatalf("writer stats %+v for %d blocks", ws, len(blocks))
	}
	var size int64
	files, _ := SegmentFiles(dir)
	for _, f := range files {
		fi, _ := os.Stat(f)
		size += fi.Size()
	}
	if uint64(size) != ws.Bytes || len(files) != int(ws.Segments) {
		t.Fatalf("%d files, %d bytes on disk; stats %+v", len(files), size, ws)
	}
	got, st := readAll(t, dir)
	if st.Damaged() || st.Blocks != len(blocks) {
		t.Fatalf("read stats %+v", st)
	}
	want := bodies(t, blocks)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("block %d differs", i)
		}
	}

	// Filter: only blocks of one flow, not decompressed otherwise.
	r := DirReader{Dir: dir, Filter: func(m Meta) bool { return m.Seq == 1 }}
	n := 0
	st, err := r.Read(func(m Meta, b *Block) error {
		if m.Seq != 1 {
			t.Fatalf("filter let Seq %d through", m.Seq)
		}
		n++
		return nil
	})
	if err != nil || st.Filtered+n != len(blocks) || n == 0 {
		t.Fatalf("filtered read: %v, %+v, %d", err, st, n)
	}
}

// TestSegmentTruncated cuts the last segment at many points, as a crash
// mid-write would: the blocks before the cut are read, the damage is
// counted, nothing fails.
func TestSegmentTruncated(t *testing.T) {
	pkts := loadCapture(t, "zeek/wikipedia.pcap")
	blocks := encodeGrouped(t, newEncoder(t, SpeedFastest), pkts, 1<<10)
	dir := t.TempDir()
	writeSegments(t, dir, blocks, 1<<30) // one segment
	files, _ := SegmentFiles(dir)
	full, _ := os.ReadFile(files[0])
	want := bodies(t, blocks)
	// record boundaries
	var ends []int
	off := segmentHeader
	for _, b := range blocks {
		off += recordHeader + len(b)
		ends = append(ends, off)
	}
	for cut := segmentHeader; cut < len(full); cut += 7 {
		if err := os.WriteFile(files[0], full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		got, st := readAll(t, dir)
		complete := 0
		for _, e := range ends {
			if e <= cut {
				complete++
			}
		}
		if len(got) != complete {
			t.Fatalf("cut at %d: read %d blocks, want %d", cut, len(got), complete)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("cut at %d: block %d differs", cut, i)
			}
		}
		atBoundary := slices.Contains(ends, cut) || cut == segmentHeader
		if atBoundary == st.Damaged() || (!atBoundary && (st.Truncated != 1 || len(st.Errors) == 0)) {
			t.Fatalf("cut at %d: stats %+v", cut, st)
		}
	}
}

// TestSegmentCorruptMiddle damages one block in the middle of a segment:
// it is skipped and counted, the rest is read.
func TestSegmentCorruptMiddle(t *testing.T) {
	pkts := loadCapture(t, "zeek/wikipedia.pcap")
	blocks := encodeGrouped(t, newEncoder(t, SpeedFastest), pkts, 1<<10)
	if len(blocks) < 5 {
		t.Fatalf("only %d blocks", len(blocks))
	}
	dir := t.TempDir()
	writeSegments(t, dir, blocks, 1<<30)
	files, _ := SegmentFiles(dir)
	full, _ := os.ReadFile(files[0])
	want := bodies(t, blocks)
	off := segmentHeader
	for _, b := range blocks[:2] {
		off += recordHeader + len(b)
	}
	for name, damage := range map[string]func(c []byte){
		"body":   func(c []byte) { c[off+recordHeader+len(blocks[2])-10] ^= 0xff },
		"length": func(c []byte) { c[off+1] ^= 0x55 },
		"magic":  func(c []byte) { c[off+recordHeader] = 'X' },
	} {
		c := slices.Clone(full)
		damage(c)
		if err := os.WriteFile(files[0], c, 0o644); err != nil {
			t.Fatal(err)
		}
		got, st := readAll(t, dir)
		if st.Corrupt != 1 || st.Truncated != 0 || len(got) != len(blocks)-1 {
			t.Fatalf("%s: read %d of %d blocks, stats %+v", name, len(got), len(blocks), st)
		}
		exp := append(slices.Clone(want[:2]), want[3:]...)
		for i := range got {
			if !bytes.Equal(got[i], exp[i]) {
				t.Fatalf("%s: block %d differs", name, i)
			}
		}
	}
	// Not a segment at all: counted, not fatal.
	if err := os.WriteFile(filepath.Join(dir, "blocks-1-0.tblk"), []byte("garbage!garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, st := readAll(t, dir)
	if st.Truncated != 1 {
		t.Fatalf("garbage segment: %+v", st)
	}
}

func timeOf(ns int64) time.Time { return time.Unix(0, ns) }

// TestTimeGoesBackwards: capture files step back in time (pcapng packets
// without a timestamp read as 0 after timestamped ones; clock steps). The
// header must span the earliest to the latest packet, and every packet
// must come back with its own timestamp, in capture order.
func TestTimeGoesBackwards(t *testing.T) {
	for _, s2 := range []bool{false, true} {
		enc, err := NewEncoder(EncoderConfig{Level: SpeedFastest, S2: s2})
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		tss := []int64{1_700_000_000_000_000_100, 0, 1_700_000_000_000_000_050, 1_700_000_000_000_000_200, 7}
		var b Builder
		b.Reset(Meta{SensorID: "s"})
		for i, ts := range tss {
			b.Append(ts, 60+i, bytes.Repeat([]byte{byte(i)}, 60+i))
		}
		eb, meta, err := b.Encode(enc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if meta.First != 0 || meta.Last != 1_700_000_000_000_000_200 {
			t.Fatalf("span %d..%d", meta.First, meta.Last)
		}
		blk, err := Decode(eb)
		if err != nil {
			t.Fatal(err)
		}
		r := blk.Reader()
		for i, want := range tss {
			ts, ol, data, err := r.Next()
			if err != nil || ts != want || ol != 60+i || len(data) != 60+i || data[0] != byte(i) {
				t.Fatalf("packet %d: ts %d (want %d), len %d, %v", i, ts, want, ol, err)
			}
		}
	}
}
