package pcapio

import (
	"fmt"
	"io"

	"github.com/tapir-sensor/tapir/block"
)

// WriteStats counts what WriteBlocks wrote.
type WriteStats struct {
	Blocks  int
	Packets int
	Bytes   int64 // captured bytes written
}

// InterfaceOf returns the capture interface a block's packets belong to.
func InterfaceOf(m *block.Meta) Interface {
	return Interface{SensorID: m.SensorID, Name: m.Interface, LinkType: m.LinkType}
}

// WriteBlocks merges the packets of blocks in timestamp order (see Merge)
// and writes them to w in format f. For classic pcap, blocks of more than
// one link type return ErrLinkType before anything is written. An empty
// set of blocks gives an empty capture (Ethernet link type).
func WriteBlocks(w io.Writer, f Format, blocks []*block.Block) (WriteStats, error) {
	st := WriteStats{Blocks: len(blocks)}
	var linkType uint16 = 1
	if len(blocks) > 0 {
		linkType = blocks[0].Meta.LinkType
	}
	if f == FormatPcap {
		for _, b := range blocks {
			if b.Meta.LinkType != linkType {
				return st, fmt.Errorf("link types %d and %d: %w", linkType, b.Meta.LinkType, ErrLinkType)
			}
		}
	}
	pw, err := NewWriter(w, f, linkType)
	if err != nil {
		return st, err
	}
	err = Merge(blocks, func(b *block.Block, ts int64, origLen int, data []byte) error {
		st.Packets++
		st.Bytes += int64(len(data))
		return pw.WritePacket(InterfaceOf(&b.Meta), ts, origLen, data)
	})
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	return st, err
}
