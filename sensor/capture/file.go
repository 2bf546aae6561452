package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
)

const (
	pcapHeaderLen       = 24
	pcapRecordHeaderLen = 16
	// readBufferSize is FileSource's bufio.Reader's buffer, which the
	// classic pcap reader's reads (recordReadSize) bypass.
	readBufferSize = 64 << 10
)

// FileSource reads packets from a pcap or pcapng stream. It implements
// Source; see Source for the concurrency contract.
//
// pcapng goes through pcapgo.NgReader. Classic pcap records are read by
// pcapRecords (pcapread.go) in large chunks and returned in place: pcapgo's
// Reader cost about a quarter of the sensor's CPU time on a large file.
// pcapRecords fails where and as pcapgo.Reader fails on the same bytes, so
// the error classification is that of pcapgo (pcapread_test.go compares
// the two readers).
type FileSource struct {
	name   string
	closer io.Closer // nil for stdin and OpenReader
	track  *trackReader
	pcap   *pcapgo.Reader // pcap: parsed the file header
	rec    *pcapRecords   // pcap: reads the records
	ng     *pcapgo.NgReader
	link   uint16 // pcap link type
	snap   int

	offset  int64         // pcap: offset of the next record in the decompressed stream
	read    uint64        // packets returned, owned by the reader
	packets atomic.Uint64 // read, published for Stats (see count)
	err     error         // sticky error after the end or damage
}

var _ Source = (*FileSource)(nil)

// OpenFile opens a capture file; "-" reads standard input. The format (pcap
// or pcapng) and gzip compression are detected from the content.
func OpenFile(path string) (*FileSource, error) {
	if path == "-" {
		s, err := newFileSource("stdin", os.Stdin, nil)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return s, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture file: %w", err)
	}
	s, err := newFileSource(path, f, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// OpenReader reads a capture from r, which the caller closes.
func OpenReader(name string, r io.Reader) (*FileSource, error) {
	return newFileSource(name, r, nil)
}

func newFileSource(name string, r io.Reader, closer io.Closer) (*FileSource, error) {
	s := &FileSource{name: name, closer: closer}
	s.track = &trackReader{r: r}
	br := bufio.NewReaderSize(s.track, readBufferSize)
	magic, err := br.Peek(4)
	if err != nil {
		if len(magic) == 0 && err == io.EOF {
			return nil, fmt.Errorf("empty file: %w", ErrUnknownFormat)
		}
		return nil, fmt.Errorf("read magic: %w", ErrTruncated)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		gz.Multistream(true)
		s.track = &trackReader{r: gz}
		br = bufio.NewReaderSize(s.track, readBufferSize)
		if magic, err = br.Peek(4); err != nil {
			if len(magic) == 0 && err == io.EOF {
				return nil, fmt.Errorf("empty gzip stream: %w", ErrUnknownFormat)
			}
			return nil, fmt.Errorf("read magic: %w: %w", ErrTruncated, err)
		}
	}
	m := uint32(magic[0])<<24 | uint32(magic[1])<<16 | uint32(magic[2])<<8 | uint32(magic[3])
	switch m {
	case 0x0a0d0d0a:
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng section header: %w", classify(err))
		}
		s.ng = ng
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		p, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("pcap header: %w", classify(err))
		}
		s.pcap = p
		s.rec = newPcapRecords(br, m, p.Snaplen())
		s.link = uint16(p.LinkType())
		s.snap = int(p.Snaplen())
		s.offset = pcapHeaderLen
	default:
		return nil, fmt.Errorf("magic %08x: %w", m, ErrUnknownFormat)
	}
	return s, nil
}

// classify maps a reader error to ErrTruncated or ErrCorrupt.
func classify(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// ReadPacket returns the next packet. The data is valid until the next call.
// It returns io.EOF at the end of a sound file, and an error wrapping
// ErrTruncated or ErrCorrupt (with the packet count and offset) after the
// last good packet of a damaged one; the error repeats on later calls.
func (s *FileSource) ReadPacket() ([]byte, CaptureInfo, error) {
	if s.err != nil {
		return nil, CaptureInfo{}, s.err
	}
	if s.rec != nil {
		data, ts, caplen, length, header, err := s.rec.next()
		if err != nil {
			return nil, CaptureInfo{}, s.fail(err, header)
		}
		s.offset += pcapRecordHeaderLen + int64(caplen)
		s.count(1)
		return data, CaptureInfo{Timestamp: ts, CaptureLength: caplen, Length: length, LinkType: s.link}, nil
	}
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
		info CaptureInfo
	)
	data, ci, err = s.ng.ZeroCopyReadPacketData()
	if err != nil {
		return nil, info, s.fail(err, false)
	}
	if len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			info.LinkType = uint16(lt)
		}
	}
	info.InterfaceIndex = ci.InterfaceIndex
	s.count(1)
	if !ci.Timestamp.IsZero() { // pcapng simple packet blocks have no time
		info.Timestamp = ci.Timestamp.UnixNano()
	}
	info.CaptureLength = ci.CaptureLength
	info.Length = ci.Length
	return data, info, nil
}

// RecordLinkType reports whether the source is a classic pcap stream,
// whose every packet has the one link type returned: ReadRecord then
// returns what ReadPacket would.
func (s *FileSource) RecordLinkType() (uint16, bool) { return s.link, s.rec != nil }

// ReadRecord is ReadPacket for a classic pcap stream (see
// RecordLinkType) with the capture info as scalars: the five-field
// CaptureInfo cannot stay in registers, and the caller's compiled copy
// of it (stored field by field, reloaded in 16-byte moves) stalled store
// forwarding on every packet. On a pcapng stream it returns
// ReadPacket's values without the link type and interface.
func (s *FileSource) ReadRecord() (data []byte, ts int64, caplen, length int, err error) {
	if s.err != nil || s.rec == nil {
		data, ci, err := s.ReadPacket()
		return data, ci.Timestamp, ci.CaptureLength, ci.Length, err
	}
	data, ts, caplen, length, header, err := s.rec.next()
	if err != nil {
		return nil, 0, 0, 0, s.fail(err, header)
	}
	s.offset += pcapRecordHeaderLen + int64(caplen)
	s.count(1)
	return data, ts, caplen, length, nil
}

// Record is a packet of a classic pcap stream as ReadRecords returns
// it: its bytes and its capture info as scalars.
type Record struct {
	Data          []byte // valid until the next read
	Timestamp     int64  // Unix nanoseconds
	CaptureLength int
	Length        int // on the wire
}

// ReadRecords is ReadRecord for up to len(recs) packets at once: it
// fills recs[:n] with the packets that ReadRecord would return one after
// the other and returns n >= 1, or 0 and the error ReadRecord would
// return. The data of all n packets stay valid until the next read.
// Packets that lie whole in the reader's buffer are returned without a
// call per packet; the others, and errors, go through ReadRecord.
func (s *FileSource) ReadRecords(recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if s.err == nil && s.rec != nil {
		if n, size := s.rec.batch(recs); n > 0 {
			s.offset += int64(size)
			s.count(uint64(n))
			return n, nil
		}
	}
	data, ts, caplen, length, err := s.ReadRecord()
	if err != nil {
		return 0, err
	}
	recs[0] = Record{Data: data, Timestamp: ts, CaptureLength: caplen, Length: length}
	return 1, nil
}

// count counts n packets returned. Stats, which may run on another
// goroutine, sees the count every 256 packets and at the end (fail): an
// atomic add per packet is a locked instruction that waits for every
// store in flight, 2-3 % of the sensor's CPU on the 10 M-packet input.
func (s *FileSource) count(n uint64) {
	before := s.read
	s.read += n
	if s.read>>8 != before>>8 { // another 256 packets
		s.packets.Store(s.read)
	}
}

// fail builds the sticky error for err. midRecord is set when the pcap
// reader had read a record header before the error.
func (s *FileSource) fail(err error, midRecord bool) error {
	n := s.read
	s.packets.Store(n)
	switch {
	case err == io.EOF && !midRecord && s.track.err == nil:
		s.err = io.EOF
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(s.track.err, io.ErrUnexpectedEOF):
		cause := err
		if s.track.err != nil {
			cause = s.track.err
		}
		s.err = fmt.Errorf("%s: %w after %d packets (%s): %w", s.name, ErrTruncated, n, s.where(), cause)
	default:
		if s.track.err != nil {
			err = s.track.err
		}
		s.err = fmt.Errorf("%s: %w after %d packets (%s): %w", s.name, ErrCorrupt, n, s.where(), err)
	}
	return s.err
}

func (s *FileSource) where() string {
	if s.pcap != nil {
		return fmt.Sprintf("record at byte offset %d", s.offset)
	}
	return fmt.Sprintf("stream ends at byte offset %d", s.track.n)
}

// Interfaces describes the file's interfaces: one for pcap, those of the
// current section for pcapng.
func (s *FileSource) Interfaces() []InterfaceInfo {
	if s.pcap != nil {
		return []InterfaceInfo{{Name: s.name, LinkType: s.link, SnapLen: s.snap}}
	}
	out := make([]InterfaceInfo, 0, s.ng.NInterfaces())
	for i := 0; i < s.ng.NInterfaces(); i++ {
		ifc, err := s.ng.Interface(i)
		if err != nil {
			break
		}
		out = append(out, InterfaceInfo{Name: ifc.Name, LinkType: uint16(ifc.LinkType), SnapLen: int(ifc.SnapLength)})
	}
	return out
}

// Stats returns the number of packets read so far: while reading, as of
// the last multiple of 256 (see count); exact once ReadPacket has
// returned an error.
func (s *FileSource) Stats() (Stats, error) {
	return Stats{Packets: s.packets.Load()}, nil
}

// Close closes the underlying file (not standard input or a reader passed to
// OpenReader). It is idempotent.
func (s *FileSource) Close() error {
	s.err = ErrClosed
	if s.closer == nil {
		return nil
	}
	c := s.closer
	s.closer = nil
	return c.Close()
}

// trackReader counts bytes and remembers the first error other than io.EOF,
// which the format readers may turn into a clean end of file (a gzip stream
// cut at a block boundary of the decompressed data).
type trackReader struct {
	r   io.Reader
	n   int64
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
