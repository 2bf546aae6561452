package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// pcapHeader describes a classic pcap file's global header.
type pcapHeader struct {
	order    binary.ByteOrder
	nano     bool
	linkType uint32
	snapLen  uint32
}

var errNotPcap = errors.New("not a classic pcap file")

// readPcapRecords splits a classic pcap file into its header and its
// records (16-byte record header plus data, verbatim).
func readPcapRecords(path string) (pcapHeader, []byte, [][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return pcapHeader{}, nil, nil, err
	}
	if len(raw) < 24 {
		return pcapHeader{}, nil, nil, errNotPcap
	}
	var h pcapHeader
	switch m := binary.LittleEndian.Uint32(raw); m {
	case 0xa1b2c3d4:
		h.order = binary.LittleEndian
	case 0xa1b23c4d:
		h.order, h.nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		h.order = binary.BigEndian
	case 0x4d3cb2a1:
		h.order, h.nano = binary.BigEndian, true
	default:
		return h, nil, nil, errNotPcap
	}
	h.snapLen = h.order.Uint32(raw[16:])
	h.linkType = h.order.Uint32(raw[20:])
	var recs [][]byte
	for off := 24; off < len(raw); {
		if off+16 > len(raw) {
			return h, nil, nil, fmt.Errorf("%s: truncated record header at %d", path, off)
		}
		n := int(h.order.Uint32(raw[off+8:]))
		if off+16+n > len(raw) {
			return h, nil, nil, fmt.Errorf("%s: truncated record at %d", path, off)
		}
		recs = append(recs, raw[off:off+16+n])
		off += 16 + n
	}
	return h, raw[:24], recs, nil
}

// epochNS parses tshark's frame.time_epoch ("1362692526.869344000") into
// nanoseconds.
func epochNS(s string) *big.Int {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sec, frac, _ := strings.Cut(s, ".")
	frac = (frac + "000000000")[:9]
	n, ok := new(big.Int).SetString(sec+frac, 10)
	if !ok {
		return new(big.Int)
	}
	if neg {
		n.Neg(n)
	}
	return n
}
