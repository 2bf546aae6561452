package capture

import "errors"

// Link types (pcap LINKTYPE_* values) used by the sources.
const (
	LinkTypeEthernet uint16 = 1
	LinkTypeRaw      uint16 = 101
)

// Sentinel errors.
var (
	// ErrTimeout is returned by a live source's ReadPacket when no packet
	// arrived within its poll timeout.
	ErrTimeout = errors.New("capture: poll timeout")
	// ErrTruncated is wrapped by a file source when the file ends inside a
	// header or packet.
	ErrTruncated = errors.New("capture file truncated")
	// ErrCorrupt is wrapped by a file source when the file holds data that
	// is not a valid packet record.
	ErrCorrupt = errors.New("capture file corrupt")
	// ErrUnknownFormat is returned when a file is neither pcap nor pcapng.
	ErrUnknownFormat = errors.New("unknown capture file format")
	// ErrClosed is returned by ReadPacket after Close.
	ErrClosed = errors.New("capture source closed")
	// ErrUnsupported is returned for live capture on platforms without
	// AF_PACKET.
	ErrUnsupported = errors.New("live capture not supported on this platform")
)

// CaptureInfo describes one captured frame.
type CaptureInfo struct {
	// Timestamp is the capture time in Unix nanoseconds.
	Timestamp int64
	// CaptureLength is the number of bytes captured (len of the data).
	CaptureLength int
	// Length is the frame's length on the wire.
	Length int
	// InterfaceIndex is the pcapng interface id within its section for
	// files, or the kernel interface index for live sources.
	InterfaceIndex int
	// LinkType is the frame's pcap LINKTYPE_* value.
	LinkType uint16
}

// InterfaceInfo describes one interface a source reads from.
type InterfaceInfo struct {
	Name     string
	LinkType uint16
	SnapLen  int
}

// Stats are cumulative counters of a source since it was opened.
type Stats struct {
	// Packets is the number of packets ReadPacket returned.
	Packets uint64
	// KernelPackets is the number of packets the kernel handed to the
	// socket, dropped ones included (live sources only).
	KernelPackets uint64
	// KernelDrops is the number of packets the kernel dropped because the
	// ring was full (live sources only).
	KernelDrops uint64
	// QueueFreezes is the number of times the TPACKET_V3 ring froze
	// because userspace did not return blocks in time (live sources only).
	QueueFreezes uint64
	// Discarded counts packets a live source dropped at startup: queued
	// before its capture filter was attached and rejected by it, or copies
	// received before it joined a fanout group that had members.
	Discarded uint64
}

// Source is a packet source. ReadPacket must be called from one goroutine
// at a time; Stats and Interfaces may be called concurrently with it. Close
// must not run concurrently with ReadPacket: stop the reader first (a live
// source's ReadPacket returns within its poll timeout).
type Source interface {
	// ReadPacket returns the next frame. The data is valid until the next
	// call (zero-copy where possible). It returns ErrTimeout when a live
	// source had nothing within its poll timeout, and io.EOF at the end of
	// a file.
	ReadPacket() ([]byte, CaptureInfo, error)
	// Interfaces describes the interfaces the source reads.
	Interfaces() []InterfaceInfo
	// Stats returns cumulative counters.
	Stats() (Stats, error)
	// Close releases the source. It is idempotent.
	Close() error
}
