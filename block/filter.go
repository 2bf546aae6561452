package block

import "fmt"

// Filter returns a block holding only the packets of b for which keep
// is true, with b's Meta otherwise (First, Last, Packets and Bytes
// recomputed): b itself when keep takes every packet, nil when it takes
// none. The new block is encoded with enc and decoded again, so it is
// checked as any stored block. Filter is safe for concurrent use with
// distinct encoders.
func Filter(enc *Encoder, b *Block, keep func(ts int64, data []byte) bool) (*Block, error) {
	var bld Builder
	bld.Reset(b.Meta)
	r := b.Reader()
	all := true
	for {
		ts, origLen, data, err := r.Next()
		if err != nil {
			break // Decode checked every record: only io.EOF ends the loop
		}
		if keep(ts, data) {
			bld.Append(ts, origLen, data)
		} else {
			all = false
		}
	}
	switch {
	case all:
		return b, nil
	case bld.Packets() == 0:
		return nil, nil
	}
	enc2, _, err := bld.Encode(enc, nil)
	if err != nil {
		return nil, fmt.Errorf("filter block %d of flow %s: %w", b.Meta.Seq, b.Meta.FlowID, err)
	}
	return Decode(enc2)
}
