package block

import (
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"testing"
)

// seedBlocks returns real encoded blocks (raw, S2 and zstd bodies, delta
// coded). Most are S2: zstd runs a few times a minute under the fuzzer's
// coverage instrumentation, so mutations of S2 blocks are what reach the
// header, delta and packet checks.
func seedBlocks(f *testing.F) [][]byte {
	var out [][]byte
	s2enc, err := NewEncoder(EncoderConfig{S2: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, rel := range []string{"zeek/get.pcap", "community-id-spec/icmp6.pcap", "tcpdump/dns_tcp.pcap"} {
		pkts := loadCapture(f, rel)
		out = append(out, encodeGrouped(f, s2enc, pkts, 1<<10)...)
	}
	out = append(out, encodeGrouped(f, newEncoder(f, SpeedFastest), loadCapture(f, "tcpdump/dns_tcp.pcap"), 1<<10)...)
	return out
}

func FuzzDecode(f *testing.F) {
	for _, b := range seedBlocks(f) {
		f.Add(b)
	}
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, data []byte) {
		if fuzzing && len(data) > 5 && data[5]&codecMask == codecZstd {
			// zstd runs a few times a minute under the fuzzer's
			// instrumentation and would stall the run; the zstd seeds
			// still run in plain `go test`.
			return
		}
		checkDecode(t, data)
		// Again with the CRC made right, so mutations reach the body
		// parser instead of stopping at the checksum.
		if _, n, err := ParseMeta(data); err == nil && n <= len(data) && n >= MinHeader {
			fixed := append([]byte(nil), data[:n]...)
			h, _ := parseHeader(fixed)
			crc := crc32.Update(0, castagnoli, fixed[:h.hlen-4])
			crc = crc32.Update(crc, castagnoli, fixed[h.hlen:])
			binary.LittleEndian.PutUint32(fixed[h.hlen-4:], crc)
			checkDecode(t, fixed)
		}
	})
}

func checkDecode(t *testing.T, data []byte) {
	{
		m, n, perr := ParseMeta(data)
		b, err := Decode(data)
		if err != nil {
			return
		}
		if perr != nil || n > len(data) || m != b.Meta {
			t.Fatalf("Decode ok but ParseMeta: %v, %d, %+v", perr, n, m)
		}
		// A decoded block reads back without error, as Decode promises.
		r := b.Reader()
		var cnt uint32
		for {
			_, ol, d, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next after successful Decode: %v", err)
			}
			if len(d) > ol {
				t.Fatal("captured longer than original")
			}
			cnt++
		}
		if cnt != b.Meta.Packets {
			t.Fatalf("%d packets, meta says %d", cnt, b.Meta.Packets)
		}
	}
}

func FuzzReadSegment(f *testing.F) {
	blocks := seedBlocks(f)
	seg := []byte{'T', 'S', 'E', 'G', SegmentVersion, 0, 0, 0}
	for i, b := range blocks[:min(6, len(blocks))] {
		seg = binary.LittleEndian.AppendUint32(seg, uint32(len(b)))
		seg = append(seg, b...)
		f.Add(seg)
		if i == 2 {
			f.Add(seg[:len(seg)-5])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var st ReadStats
		n := 0
		err := ReadSegment("fuzz", data, nil, func(m Meta, b *Block) error {
			n++
			return nil
		}, &st)
		if err != nil && !errors.Is(err, ErrSegment) && !errors.Is(err, ErrVersion) {
			t.Fatalf("unexpected error %v", err)
		}
		if n != st.Blocks {
			t.Fatalf("%d callbacks, stats say %d", n, st.Blocks)
		}
	})
}
