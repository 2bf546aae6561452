package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// readPacketPcapgo is FileSource.ReadPacket for classic pcap as it was
// before pcapRecords: pcapgo.Reader reads the records. It is the oracle the
// new reader is compared with.
func (s *FileSource) readPacketPcapgo() ([]byte, CaptureInfo, error) {
	if s.err != nil {
		return nil, CaptureInfo{}, s.err
	}
	data, ci, err := s.pcap.ZeroCopyReadPacketData()
	if err != nil {
		return nil, CaptureInfo{}, s.fail(err, ci.CaptureLength > 0 || !ci.Timestamp.IsZero())
	}
	s.offset += pcapRecordHeaderLen + int64(ci.CaptureLength)
	s.count(1)
	info := CaptureInfo{LinkType: s.link, CaptureLength: ci.CaptureLength, Length: ci.Length}
	if !ci.Timestamp.IsZero() {
		info.Timestamp = ci.Timestamp.UnixNano()
	}
	return data, info, nil
}

// compareWithPcapgo reads b with FileSource and with the pcapgo oracle and
// fails at the first difference: packet bytes, capture info, the error that
// ends the stream (same text, so the same kind, packet count and offset),
// and that error repeating. It returns the packet count and the final error
// (nil for io.EOF), or ok=false when b is not a classic pcap stream.
func compareWithPcapgo(t testing.TB, name string, b []byte) (n int, end error, ok bool) {
	t.Helper()
	src, err := OpenReader(name, bytes.NewReader(b))
	if err != nil {
		return 0, err, false
	}
	ref, err2 := OpenReader(name, bytes.NewReader(b))
	if err2 != nil {
		t.Fatalf("%s: opens once, then fails: %v", name, err2)
	}
	if src.rec == nil {
		return 0, nil, false
	}
	var last error
	for {
		data, ci, err := src.ReadPacket()
		wdata, wci, werr := ref.readPacketPcapgo()
		last = err
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("%s packet %d: error %v, pcapgo %v", name, n, err, werr)
		}
		if err != nil {
			if err != io.EOF {
				end = err
			}
			break
		}
		if ci != wci || !bytes.Equal(data, wdata) || len(data) != ci.CaptureLength {
			t.Fatalf("%s packet %d: %+v (%d bytes), pcapgo %+v (%d bytes), same bytes %v",
				name, n, ci, len(data), wci, len(wdata), bytes.Equal(data, wdata))
		}
		n++
	}
	if _, _, err := src.ReadPacket(); err != last {
		t.Fatalf("%s: read after the end: %v, first %v", name, err, last)
	}
	sa, _ := src.Stats()
	sb, _ := ref.Stats()
	if sa != sb || sa.Packets != uint64(n) {
		t.Fatalf("%s: Stats %+v, pcapgo %+v, read %d", name, sa, sb, n)
	}
	return n, end, true
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// pcapVariants returns damaged copies of the classic pcap file b: cut at a
// few offsets, and with record headers rewritten to lengths no reader
// should take (capture length above the snap length, above the original
// length, and a huge snap length with a record claiming 2 GiB).
func pcapVariants(b []byte) map[string][]byte {
	out := map[string][]byte{}
	for _, frac := range []float64{0.01, 0.5, 0.97} {
		for _, d := range []int{0, 3, 16, 17} {
			if cut := int(float64(len(b))*frac) + d; cut < len(b) {
				out[fmt.Sprintf("cut%d", cut)] = b[:cut]
			}
		}
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if m := binary.BigEndian.Uint32(b); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
		bo = binary.BigEndian
	}
	// Offsets of the first records.
	var recs []int
	for off := pcapHeaderLen; off+pcapRecordHeaderLen <= len(b) && len(recs) < 4; {
		recs = append(recs, off)
		off += pcapRecordHeaderLen + int(bo.Uint32(b[off+8:]))
	}
	for i, off := range recs {
		c := bytes.Clone(b)
		bo.PutUint32(c[off+8:], 0xfffffff0)
		out[fmt.Sprintf("rec%d-caplen-huge", i)] = c
		c = bytes.Clone(b)
		bo.PutUint32(c[off+12:], bo.Uint32(c[off+8:])-1)
		out[fmt.Sprintf("rec%d-caplen-over-len", i)] = c
		c = bytes.Clone(b)
		bo.PutUint32(c[16:], 0xffffffff)
		bo.PutUint32(c[off+8:], 1<<31)
		bo.PutUint32(c[off+12:], 1<<31)
		out[fmt.Sprintf("rec%d-2GiB-record", i)] = c
		c = bytes.Clone(b)
		bo.PutUint32(c[off+4:], 0xffffffff) // fraction out of range
		out[fmt.Sprintf("rec%d-frac-max", i)] = c
		c = bytes.Clone(b)
		bo.PutUint32(c[16:], 1<<20)
		bo.PutUint32(c[off+8:], 300000)
		bo.PutUint32(c[off+12:], 300000)
		out[fmt.Sprintf("rec%d-300k-record", i)] = c
	}
	// The same records with the other timestamp resolution, and in the other
	// byte order (the shared captures are all little-endian microsecond).
	c := bytes.Clone(b)
	if bo == binary.LittleEndian {
		bo.PutUint32(c, 0xa1b23c4d)
	} else {
		bo.PutUint32(c, 0xa1b2c3d4)
	}
	out["other-resolution"] = c
	swapped := bytes.Clone(b)
	var ob binary.ByteOrder = binary.BigEndian
	if bo == binary.BigEndian {
		ob = binary.LittleEndian
	}
	swap32 := func(off int) { ob.PutUint32(swapped[off:], bo.Uint32(b[off:])) }
	swap16 := func(off int) { ob.PutUint16(swapped[off:], bo.Uint16(b[off:])) }
	swap32(0)
	swap16(4)
	swap16(6)
	for _, off := range []int{8, 12, 16, 20} {
		swap32(off)
	}
	for off := pcapHeaderLen; off+pcapRecordHeaderLen <= len(b); off += pcapRecordHeaderLen + int(bo.Uint32(b[off+8:])) {
		for i := 0; i < 4; i++ {
			swap32(off + 4*i)
		}
	}
	out["other-byte-order"] = swapped
	c = bytes.Clone(swapped)
	if ob.Uint32(c) == 0xa1b2c3d4 {
		ob.PutUint32(c, 0xa1b23c4d)
	} else {
		ob.PutUint32(c, 0xa1b2c3d4)
	}
	out["other-byte-order-and-resolution"] = c
	return out
}

// TestPcapRecordsMatchPcapgo reads every shared classic pcap capture, its
// gzip-compressed (or, for .gz, decompressed) copy and damaged copies of
// both with FileSource and with pcapgo.Reader, and requires the same
// packets and the same end.
func TestPcapRecordsMatchPcapgo(t *testing.T) {
	nfiles := 0
	for _, path := range testenv.Captures(t) {
		name := testenv.Rel(t, path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		plain, gz := raw, []byte(nil)
		if strings.HasSuffix(path, ".gz") {
			plain, gz = nil, raw
			if b, err := os.ReadFile(testenv.Plain(t, path)); err == nil {
				plain = b
			} else {
				t.Fatal(err)
			}
		}
		if src, err := OpenReader(name, bytes.NewReader(plain)); err != nil || src.rec == nil {
			continue // pcapng, or not a capture
		}
		nfiles++
		if gz == nil {
			gz = gzipBytes(t, plain)
		}
		t.Run(name, func(t *testing.T) {
			n, end, _ := compareWithPcapgo(t, name, plain)
			if end != nil {
				t.Logf("%d packets, then %v", n, end)
			}
			if gn, gend, _ := compareWithPcapgo(t, name+".gz", gz); gn != n || (gend == nil) != (end == nil) {
				t.Fatalf("gzip copy: %d packets, end %v; plain %d, end %v", gn, gend, n, end)
			}
			for vname, v := range pcapVariants(plain) {
				_, _, _ = compareWithPcapgo(t, name+":"+vname, v)
				_, _, _ = compareWithPcapgo(t, name+":"+vname+".gz", gzipBytes(t, v))
			}
			for _, frac := range []float64{0.2, 0.9} {
				cut := int(float64(len(gz)) * frac)
				_, _, _ = compareWithPcapgo(t, fmt.Sprintf("%s.gz:cut%d", name, cut), gz[:cut])
			}
			// A flipped byte in the gzip trailer (CRC-32) or the deflate
			// data: a checksum or data error at or before the end.
			for _, pos := range []int{len(gz) - 6, len(gz) / 2} {
				c := bytes.Clone(gz)
				c[pos] ^= 0x55
				_, _, _ = compareWithPcapgo(t, fmt.Sprintf("%s.gz:flip%d", name, pos), c)
			}
		})
	}
	if nfiles == 0 {
		t.Fatal("no classic pcap among the shared captures")
	}
}

// TestPcapRecordsLargeRecords reads records longer than the 1 MiB buffer
// (the buffer grows) from a file whose snap length allows them, through the
// same comparison. The records are the shared captures' packets padded.
func TestPcapRecordsLargeRecords(t *testing.T) {
	path := testenv.Plain(t, testenv.Pcap(t, "zeek/wikipedia.pcap"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bo := binary.LittleEndian
	if binary.BigEndian.Uint32(b) == 0xa1b2c3d4 {
		t.Skip("expects a little-endian capture")
	}
	out := bytes.Clone(b[:pcapHeaderLen])
	bo.PutUint32(out[16:], 4<<20)
	sizes := []int{3 << 20, 100, 1<<20 - 10, 1 << 20, 300000, 4 << 20, 60}
	i := 0
	for off := pcapHeaderLen; off+pcapRecordHeaderLen <= len(b) && i < len(sizes); i++ {
		caplen := int(bo.Uint32(b[off+8:]))
		h := bytes.Clone(b[off : off+pcapRecordHeaderLen])
		bo.PutUint32(h[8:], uint32(sizes[i]))
		bo.PutUint32(h[12:], uint32(sizes[i]))
		out = append(out, h...)
		pkt := make([]byte, sizes[i])
		copy(pkt, b[off+pcapRecordHeaderLen:off+pcapRecordHeaderLen+caplen])
		out = append(out, pkt...)
		off += pcapRecordHeaderLen + caplen
	}
	n, end, _ := compareWithPcapgo(t, "large", out)
	if n != len(sizes) || end != nil {
		t.Fatalf("%d packets, end %v", n, end)
	}
	_, _, _ = compareWithPcapgo(t, "large-cut", out[:len(out)-1000])
	_, _, _ = compareWithPcapgo(t, "large.gz", gzipBytes(t, out))
}

// sizeRecorder records the buffer size of every Read asked of it.
type sizeRecorder struct {
	r     io.Reader
	sizes []int
}

func (s *sizeRecorder) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

// TestPcapRecordsReadSize: a classic pcap of several MiB is read from
// the stream in pieces of at most recordReadSize (the bytes then stay in
// cache until their packets are read; reads of the whole 1 MiB buffer
// left it first), straight into the record buffer: after the first fill
// of FileSource's bufio.Reader (the file header), no read goes through
// its buffer, which would copy every byte twice.
func TestPcapRecordsReadSize(t *testing.T) {
	b, err := os.ReadFile(testenv.Plain(t, testenv.Pcap(t, "zeek/wikipedia.pcap")))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Clone(b)
	for len(big) < 4<<20 {
		big = append(big, b[pcapHeaderLen:]...)
	}
	rec := &sizeRecorder{r: bytes.NewReader(big)}
	src, err := OpenReader("big", rec)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, _, _, err := src.ReadRecord(); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n == 0 {
		t.Fatal("no packets")
	}
	fills := 0
	for i, sz := range rec.sizes {
		if sz > recordReadSize {
			t.Fatalf("read %d asked for %d bytes, want at most %d", i, sz, recordReadSize)
		}
		if sz == readBufferSize {
			fills++
		}
	}
	if fills > 1 || len(rec.sizes) < len(big)/recordReadSize {
		t.Fatalf("%d reads, %d of them bufio fills, for %d bytes: want the records read straight in pieces of %d",
			len(rec.sizes), fills, len(big), recordReadSize)
	}
}
