// Package pcapio writes packets out as classic pcap (nanosecond
// timestamps, magic 0xa1b23c4d) or pcapng (one interface per sensor,
// interface and link type; nanosecond if_tsresol), and merges the packets
// of several blocks into timestamp order. It wraps gopacket's pcapgo
// writers.
package pcapio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Errors.
var (
	ErrLinkType = errors.New("pcapio: classic pcap holds one link type only; use pcapng")
	ErrFormat   = errors.New("pcapio: unknown format")
	ErrClosed   = errors.New("pcapio: writer closed")
)

// Format is an output file format.
type Format string

// Formats.
const (
	FormatPcap   Format = "pcap"
	FormatPcapNG Format = "pcapng"
)

// ParseFormat parses "pcap" or "pcapng".
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case FormatPcap, FormatPcapNG:
		return Format(s), nil
	}
	return "", fmt.Errorf("format %q: %w", s, ErrFormat)
}

// DefaultSnapLen is the snap length written in file headers. Readers
// reject packets longer than their own limit (262144 for Wireshark), so
// a larger value would not help.
const DefaultSnapLen = 262144

// Interface names where packets were captured. pcapng writes one
// interface description block per distinct Interface.
type Interface struct {
	SensorID string
	Name     string
	LinkType uint16
}

// Writer writes packets to a capture file. Writers are not safe for
// concurrent use. Close flushes but does not close the underlying
// io.Writer.
type Writer interface {
	WritePacket(ifc Interface, tsNanos int64, origLen int, data []byte) error
	Close() error
}

// NewWriter returns a writer of the given format. linkType is the link
// type of a classic pcap file (ignored by pcapng).
func NewWriter(w io.Writer, f Format, linkType uint16) (Writer, error) {
	switch f {
	case FormatPcap:
		return NewPcap(w, linkType)
	case FormatPcapNG:
		return NewPcapNG(w), nil
	}
	return nil, fmt.Errorf("format %q: %w", f, ErrFormat)
}

// WriteBufferSize is the write buffer NewPcap puts in front of its
// writer. A *bufio.Writer at least this big is used as it is (a caller
// may lend one, as the collector's pcap answers do).
const WriteBufferSize = 256 << 10

// Pcap writes classic pcap with nanosecond timestamps.
type Pcap struct {
	bw       *bufio.Writer
	w        *pcapgo.Writer
	linkType uint16
	closed   bool
}

// NewPcap writes the file header for linkType and returns the writer.
func NewPcap(w io.Writer, linkType uint16) (*Pcap, error) {
	bw := bufio.NewWriterSize(w, WriteBufferSize)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(DefaultSnapLen, layers.LinkType(linkType)); err != nil {
		return nil, fmt.Errorf("write pcap header: %w", err)
	}
	return &Pcap{bw: bw, w: pw, linkType: linkType}, nil
}

// WritePacket writes one packet; a link type other than the file's
// returns ErrLinkType.
func (p *Pcap) WritePacket(ifc Interface, tsNanos int64, origLen int, data []byte) error {
	if p.closed {
		return ErrClosed
	}
	if ifc.LinkType != p.linkType {
		return fmt.Errorf("packet of link type %d in a file of link type %d: %w", ifc.LinkType, p.linkType, ErrLinkType)
	}
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, tsNanos), CaptureLength: len(data), Length: max(origLen, len(data))}
	if err := p.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write pcap packet: %w", err)
	}
	return nil
}

// Close flushes the buffered output.
func (p *Pcap) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("flush pcap: %w", err)
	}
	return nil
}

// PcapNG writes pcapng: one section, one interface description block per
// Interface (if_name "sensor:name", if_description naming both, if_tsresol
// 9), enhanced packet blocks with nanosecond timestamps.
type PcapNG struct {
	out    io.Writer
	w      *pcapgo.NgWriter
	ifaces map[Interface]int
	closed bool
}

// NewPcapNG returns a pcapng writer. The section header is written with
// the first packet (or by Close for an empty file).
func NewPcapNG(w io.Writer) *PcapNG {
	return &PcapNG{out: w, ifaces: make(map[Interface]int)}
}

func ngInterface(ifc Interface) pcapgo.NgInterface {
	name := ifc.Name
	if ifc.SensorID != "" {
		name = ifc.SensorID + ":" + ifc.Name
	}
	return pcapgo.NgInterface{
		Name:                name,
		Description:         fmt.Sprintf("tapir sensor %q interface %q", ifc.SensorID, ifc.Name),
		LinkType:            layers.LinkType(ifc.LinkType),
		SnapLength:          DefaultSnapLen,
		TimestampResolution: 9,
	}
}

func (p *PcapNG) iface(ifc Interface) (int, error) {
	if id, ok := p.ifaces[ifc]; ok {
		return id, nil
	}
	var id int
	var err error
	if p.w == nil {
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "tapir"}}
		p.w, err = pcapgo.NewNgWriterInterface(p.out, ngInterface(ifc), opts)
	} else {
		id, err = p.w.AddInterface(ngInterface(ifc))
	}
	if err != nil {
		return 0, fmt.Errorf("write pcapng interface: %w", err)
	}
	p.ifaces[ifc] = id
	return id, nil
}

// WritePacket writes one packet, adding an interface block first when
// ifc is new.
func (p *PcapNG) WritePacket(ifc Interface, tsNanos int64, origLen int, data []byte) error {
	if p.closed {
		return ErrClosed
	}
	id, err := p.iface(ifc)
	if err != nil {
		return err
	}
	ci := gopacket.CaptureInfo{
		Timestamp: time.Unix(0, tsNanos), CaptureLength: len(data),
		Length: max(origLen, len(data)), InterfaceIndex: id,
	}
	if err := p.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write pcapng packet: %w", err)
	}
	return nil
}

// Close flushes the output. An empty file gets a section header and one
// Ethernet interface so that readers accept it.
func (p *PcapNG) Close() error {
	if p.closed {
		return nil
	}
	if p.w == nil {
		if _, err := p.iface(Interface{LinkType: uint16(layers.LinkTypeEthernet)}); err != nil {
			return err
		}
	}
	p.closed = true
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("flush pcapng: %w", err)
	}
	return nil
}
