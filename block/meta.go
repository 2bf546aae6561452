// Package block is tapir's packet block format: the packets of one flow,
// in capture order, with nanosecond timestamps, original and captured
// lengths, compressed with zstd one block at a time so that a single flow
// is read without decompressing anything else. A block's Meta header is
// stored uncompressed in front of the body so stores and indexes can read
// it cheaply.
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
	First, Last int64    // first and last packet timestamp, Unix nanoseconds
	Packets     uint32   // packets in the block
	Bytes       uint64   // sum of captured lengths (uncompressed payload)
}
