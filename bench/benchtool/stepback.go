package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// stepback writes a classic pcap whose clock steps back N-1 times: the
// input is cut into N slices of (nearly) equal packet counts and each
// slice is shifted so that it starts where the first slice started (or,
// with -step D, slice i is shifted back by i*D). It is what a capture
// sees when the host's clock is stepped back while it runs: the same
// flows continue, with timestamps earlier than their earlier packets.
//
//	benchtool stepback -slices 100 [-step D] IN.pcap OUT.pcap
func stepback(args []string) error {
	fl := flag.NewFlagSet("stepback", flag.ExitOnError)
	slices := fl.Int("slices", 100, "slices; the clock steps back between two slices")
	step := fl.Duration("step", 0, "shift slice i back by i*step (default: every slice restarts at the first packet's time)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 2 || *slices < 1 {
		return errors.New("stepback: want -slices N >= 1, IN.pcap and OUT.pcap")
	}
	total, err := countRecords(fl.Arg(0))
	if err != nil {
		return err
	}
	in, err := openPcap(fl.Arg(0))
	if err != nil {
		return err
	}
	defer in.f.Close()
	out, err := os.Create(fl.Arg(1))
	if err != nil {
		return fmt.Errorf("stepback: %w", err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	if _, err := w.Write(in.hdr); err != nil {
		return fmt.Errorf("stepback: %w", err)
	}
	var t0, sliceStart, shift int64
	for i := int64(0); ; i++ {
		ts, err := in.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if i == 0 {
			t0 = ts
		}
		if k := i * int64(*slices) / max(total, 1); i == 0 || k != (i-1)*int64(*slices)/max(total, 1) {
			sliceStart = ts
			if *step > 0 {
				shift = -k * step.Nanoseconds()
			} else {
				shift = t0 - sliceStart
			}
		}
		in.setTime(ts + shift)
		if err := in.copyRecord(w); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("stepback: %w", err)
	}
	return out.Close()
}

// pcapFile reads a classic pcap file record by record.
type pcapFile struct {
	f    *os.File
	r    *bufio.Reader
	hdr  []byte
	bo   binary.ByteOrder
	unit int64 // nanoseconds per sub-second unit
	rec  [16]byte
	buf  []byte
}

func openPcap(path string) (*pcapFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	p := &pcapFile{f: f, r: bufio.NewReaderSize(f, 1<<20), hdr: make([]byte, 24)}
	if _, err := io.ReadFull(p.r, p.hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	switch m := binary.LittleEndian.Uint32(p.hdr); m {
	case 0xa1b2c3d4:
		p.bo, p.unit = binary.LittleEndian, 1000
	case 0xa1b23c4d:
		p.bo, p.unit = binary.LittleEndian, 1
	case 0xd4c3b2a1:
		p.bo, p.unit = binary.BigEndian, 1000
	case 0x4d3cb2a1:
		p.bo, p.unit = binary.BigEndian, 1
	default:
		f.Close()
		return nil, fmt.Errorf("%s: not a classic pcap (magic %#x)", path, m)
	}
	return p, nil
}

// next reads the next record and returns its time (Unix ns); io.EOF at
// the end.
func (p *pcapFile) next() (int64, error) {
	if _, err := io.ReadFull(p.r, p.rec[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("read record header: %w", err)
	}
	n := int(p.bo.Uint32(p.rec[8:]))
	if n > 1<<26 {
		return 0, fmt.Errorf("record of %d bytes", n)
	}
	if cap(p.buf) < n {
		p.buf = make([]byte, n)
	}
	p.buf = p.buf[:n]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		return 0, fmt.Errorf("read record: %w", err)
	}
	return int64(p.bo.Uint32(p.rec[0:]))*int64(time.Second) + int64(p.bo.Uint32(p.rec[4:]))*p.unit, nil
}

// setTime rewrites the current record's time.
func (p *pcapFile) setTime(ts int64) {
	p.bo.PutUint32(p.rec[0:], uint32(ts/int64(time.Second)))
	p.bo.PutUint32(p.rec[4:], uint32(ts%int64(time.Second)/p.unit))
}

// copyRecord writes the current record.
func (p *pcapFile) copyRecord(w io.Writer) error {
	if _, err := w.Write(p.rec[:]); err != nil {
		return err
	}
	_, err := w.Write(p.buf)
	return err
}

// countRecords counts the records of a classic pcap file.
func countRecords(path string) (int64, error) {
	p, err := openPcap(path)
	if err != nil {
		return 0, err
	}
	defer p.f.Close()
	var n int64
	for {
		if _, err := p.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		n++
	}
}
