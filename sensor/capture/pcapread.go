package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	// recordBufferSize is the initial size of a pcapRecords buffer.
	recordBufferSize = 1 << 20
	// recordReadSize is the most a pcapRecords reads from the stream at a
	// time (at least readBufferSize, so that FileSource's bufio.Reader
	// passes the read straight through): the bytes stay in the CPU's
	// level-2 cache between the kernel's copy into the buffer and the
	// reading of their packets, where reads of the whole 1 MiB buffer
	// left it before the packets were read.
	recordReadSize = 128 << 10
	// eagerRecordMax is the longest record accepted whatever the file's
	// snap length says (libpcap's MAXIMUM_SNAPLEN, as pcapgo's reader).
	eagerRecordMax = 262144
	// maxEmptyReads is how many (0, nil) reads in a row end the stream with
	// io.ErrNoProgress, as bufio does.
	maxEmptyReads = 100
)

// pcapRecords reads the records of a classic pcap stream (after its file
// header) in large chunks and returns them in place. It accepts what
// pcapgo.Reader.ZeroCopyReadPacketData accepts and fails where and how it
// fails (the same error values and texts), so FileSource's error semantics
// do not depend on which of the two reads a file. It is not safe for
// concurrent use.
type pcapRecords struct {
	r          io.Reader
	buf        []byte // allocated on the first read
	start, end int    // unread bytes are buf[start:end]
	rerr       error  // error from r, returned once buf[start:end] runs short

	bigEndian bool
	nsFactor  uint32 // 1 (nanosecond magic) or 1000 (microsecond magic)
	snaplen   uint32
	maxCap    int // longest record accepted: max(snaplen, eagerRecordMax)
}

// newPcapRecords reads records from r, positioned after the 24-byte file
// header whose magic and snap length are given.
func newPcapRecords(r io.Reader, magic uint32, snaplen uint32) *pcapRecords {
	p := &pcapRecords{r: r, snaplen: snaplen, maxCap: eagerRecordMax, nsFactor: 1000}
	switch magic { // big-endian reading of the first four bytes
	case 0xa1b2c3d4:
		p.bigEndian = true
	case 0xa1b23c4d:
		p.bigEndian, p.nsFactor = true, 1
	case 0x4d3cb2a1:
		p.nsFactor = 1
	}
	if snaplen > eagerRecordMax {
		p.maxCap = int(snaplen)
	}
	return p
}

// header returns the four fields of a record header: seconds, fraction,
// captured and original length (one byte-order test for the four).
func (p *pcapRecords) header(h *[pcapRecordHeaderLen]byte) (sec, frac, caplen, length uint32) {
	if p.bigEndian {
		be := binary.BigEndian
		return be.Uint32(h[0:]), be.Uint32(h[4:]), be.Uint32(h[8:]), be.Uint32(h[12:])
	}
	le := binary.LittleEndian
	return le.Uint32(h[0:]), le.Uint32(h[4:]), le.Uint32(h[8:]), le.Uint32(h[12:])
}

// timestamp returns a record's time in Unix ns from its header's seconds
// and fraction. frac*nsFactor wraps in uint32 as it does in pcapgo, and
// time.Unix carries an out-of-range nanosecond count into the seconds, so
// the sum is what pcapgo's Timestamp.UnixNano() returns for every input.
func (p *pcapRecords) timestamp(sec, frac uint32) int64 {
	return int64(sec)*1e9 + int64(frac*p.nsFactor)
}

// next returns the next record's data (valid until the next call), its
// timestamp in Unix nanoseconds, and its captured and original lengths. On
// error, header reports whether the record header had been read whole.
// Errors are those of io.ReadFull on the stream (io.EOF when the stream
// ends before the record, io.ErrUnexpectedEOF inside it, or the stream's
// own error) or a length error for a record no reader should allocate.
func (p *pcapRecords) next() (data []byte, ts int64, caplen, length int, header bool, err error) {
	if p.end-p.start < pcapRecordHeaderLen {
		if err = p.fill(pcapRecordHeaderLen); err != nil {
			return nil, 0, 0, 0, false, eofErr(err, p.end-p.start)
		}
	}
	h := (*[pcapRecordHeaderLen]byte)(p.buf[p.start:])
	sec, frac, cl, ol := p.header(h)
	ts = p.timestamp(sec, frac)
	caplen, length = int(cl), int(ol)
	if caplen > p.maxCap || caplen < 0 {
		return nil, ts, caplen, length, true, fmt.Errorf("capture length exceeds snap length: %d > %d", caplen, p.snaplen)
	}
	if caplen > length {
		return nil, ts, caplen, length, true, fmt.Errorf("capture length exceeds original packet length: %d > %d", caplen, length)
	}
	need := pcapRecordHeaderLen + caplen
	if p.end-p.start < need {
		if err = p.fill(need); err != nil {
			// fill consumed nothing: the record header is still buffered.
			return nil, ts, caplen, length, true, eofErr(err, p.end-p.start-pcapRecordHeaderLen)
		}
	}
	data = p.buf[p.start+pcapRecordHeaderLen : p.start+need : p.start+need]
	p.start += need
	return data, ts, caplen, length, true, nil
}

// batch fills recs with the records that lie whole in the buffer, valid,
// from the next one on, and returns their number and bytes (headers
// included); it reads nothing from the stream. The records' data stay
// valid until the next call of next or batch. It stops before a record
// next would fail on or have to read for, which next then returns.
func (p *pcapRecords) batch(recs []Record) (n, size int) {
	buf := p.buf[:p.end]
	start := p.start
	for n < len(recs) && len(buf)-start >= pcapRecordHeaderLen {
		sec, frac, cl, ol := p.header((*[pcapRecordHeaderLen]byte)(buf[start:]))
		caplen, length := int(cl), int(ol)
		need := pcapRecordHeaderLen + caplen
		if caplen > p.maxCap || caplen > length || len(buf)-start < need {
			break
		}
		r := &recs[n]
		r.Data = buf[start+pcapRecordHeaderLen : start+need : start+need]
		r.Timestamp = p.timestamp(sec, frac)
		r.CaptureLength, r.Length = caplen, length
		start += need
		n++
	}
	size = start - p.start
	p.start = start
	return n, size
}

// fill makes at least need bytes available in buf[start:end], moving the
// unread bytes to the front and growing the buffer with the data actually
// read (never ahead of it: a length field cannot make it allocate more than
// twice what the stream holds). If the stream ends or fails first it
// returns the stream's error (io.EOF at its end); the buffered bytes stay.
func (p *pcapRecords) fill(need int) error {
	if p.rerr != nil {
		return p.rerr
	}
	if p.buf == nil {
		p.buf = make([]byte, recordBufferSize)
	}
	if p.start > 0 {
		p.end = copy(p.buf, p.buf[p.start:p.end])
		p.start = 0
	}
	empty := 0
	for p.end < need {
		if p.end == len(p.buf) {
			grown := make([]byte, min(need, 2*len(p.buf)))
			copy(grown, p.buf[:p.end])
			p.buf = grown
		}
		n, err := p.r.Read(p.buf[p.end:min(len(p.buf), p.end+max(recordReadSize, need-p.end))])
		p.end += n
		if err != nil {
			p.rerr = err
			break
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			p.rerr = io.ErrNoProgress
			break
		}
	}
	if p.end < need {
		return p.rerr
	}
	return nil
}

// eofErr is the error io.ReadFull returns when the stream ends with err
// after got of the bytes it wanted: io.ErrUnexpectedEOF for a partial read
// that ends in io.EOF.
func eofErr(err error, got int) error {
	if err == io.EOF && got > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}
