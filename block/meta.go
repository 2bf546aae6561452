// Package block is tapir's packet block format: the packets of one flow,
// in capture order, with nanosecond timestamps, original and captured
// lengths, compressed (S2 by default, or zstd) one block at a time so
// that a single flow is read without decompressing anything else. A block's Meta header is
// stored uncompressed in front of the body so stores and indexes can read
// it cheaply.
//
// # Encoded block
//
// All integers are little-endian unless called varints. Offsets are from
// the start of the block.
//
//	off  size  field
//	0    4     magic "TBLK"
//	4    1     format version (1)
//	5    1     codec, low 4 bits: 0 = body stored raw, 1 = body is one
//	           zstd frame, 2 = body is one S2 block (klauspost/compress/s2);
//	           bit 4 (0x10): the (decompressed) body is delta coded (see
//	           delta.go), other bits zero
//	6    2     header length H in bytes, from offset 0 to the end of the
//	           CRC field (lets later versions append fixed fields)
//	8    16    Key.A (16-byte address, IPv4 mapped)
//	24   16    Key.B
//	40   2     Key.PortA
//	42   2     Key.PortB
//	44   1     Key.Proto
//	45   1     Key.Family
//	46   2     Key.VLAN
//	48   2     Key.InnerVLAN
//	50   16    FlowID
//	66   2     LinkType
//	68   4     Seq
//	72   8     First: earliest packet timestamp (Unix ns, signed)
//	80   8     Last: latest packet timestamp (capture order may step back)
//	88   4     Packets
//	92   8     Bytes (sum of captured lengths)
//	100  4     raw body length R (uncompressed, delta coded if flagged)
//	104  1     len(CommunityID) c, then c bytes
//	     1     len(SensorID) s, then s bytes
//	     1     len(Interface) i, then i bytes
//	     4     compressed body length L
//	     4     CRC32C (Castagnoli) of bytes [0, H-4) followed by the body
//	H    L     body: raw when codec is 0, else a zstd frame or an S2 block
//	           of R bytes
//
// The raw body is, per packet in capture order:
//
//	varint  timestamp delta in ns from the previous packet (the first
//	        packet's delta is from First), zigzag signed as in
//	        encoding/binary.AppendVarint
//	uvarint original (wire) length
//	uvarint captured length n (n <= original length)
//	n bytes captured packet bytes
//
// Strings in the header are at most 255 bytes (longer ones are cut when
// encoding). A decoder checks the header, the CRC, that the body
// decompresses to exactly R bytes, undoes the delta coding when flagged,
// and that the packets in the raw body agree with
// Packets, Bytes and Last.
//
// # Segment files
//
// DirWriter appends encoded blocks to segment files named
// blocks-<unixnano>-<n>.tblk. A segment starts with the 8 bytes
// "TSEG" + version (1) + 3 zero bytes, then holds records of a 4-byte
// block length followed by that many bytes of encoded block. A crash can
// leave a truncated last record; DirReader reports and skips it.
package block

import (
	"github.com/tapir-sensor/tapir/flow"
)

// Meta describes one block: which flow it belongs to, where it was
// captured, and the time span and number of packets it holds.
type Meta struct {
	Key         flow.Key // canonical flow key (with VLAN)
	FlowID      flow.ID  // tapir flow instance ID
	CommunityID string   // Community ID v1 of the flow
	SensorID    string   // sensor that captured the packets
	Interface   string   // capture interface (or file name offline)
	LinkType    uint16   // pcap LINKTYPE_* of the packet bytes
	Seq         uint32   // block number within the flow, from 0
	First, Last int64    // earliest and latest packet timestamp, Unix nanoseconds
	Packets     uint32   // packets in the block
	Bytes       uint64   // sum of captured lengths (uncompressed payload)
}
