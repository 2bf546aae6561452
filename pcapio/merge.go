package pcapio

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
)

// EmitFunc receives one merged packet and the block it came from. data
// aliases the block's body.
type EmitFunc func(b *block.Block, tsNanos int64, origLen int, data []byte) error

// Merge yields the packets of blocks in timestamp order. The merge is
// stable: packets with equal timestamps keep the order of their blocks in
// the slice, then their order within a block. Blocks of one flow (same
// sensor, flow ID, key and Community ID) are first chained by Seq into a
// single stream, so a flow's packets keep their capture order even when
// its timestamps step backwards across a block boundary.
func Merge(blocks []*block.Block, emit EmitFunc) error {
	type chainKey struct {
		sensor, cid string
		id          [16]byte
		key         flow.Key
		ifc         string
	}
	var order []chainKey
	chains := make(map[chainKey][]*block.Block)
	for _, b := range blocks {
		k := chainKey{b.Meta.SensorID, b.Meta.CommunityID, b.Meta.FlowID, b.Meta.Key, b.Meta.Interface}
		if _, ok := chains[k]; !ok {
			order = append(order, k)
		}
		chains[k] = append(chains[k], b)
	}
	h := make(mergeHeap, 0, len(order))
	for i, k := range order {
		c := chains[k]
		slices.SortStableFunc(c, func(a, b *block.Block) int { return cmp.Compare(a.Meta.Seq, b.Meta.Seq) })
		s := &stream{chain: c, rank: i}
		ok, err := s.advance()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, s)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		s := h[0]
		if err := emit(s.chain[s.cur], s.ts, s.origLen, s.data); err != nil {
			return err
		}
		ok, err := s.advance()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// stream walks a chain of blocks.
type stream struct {
	chain   []*block.Block
	cur     int
	r       *block.Reader
	rank    int
	ts      int64
	origLen int
	data    []byte
}

func (s *stream) advance() (bool, error) {
	for s.cur < len(s.chain) {
		if s.r == nil {
			s.r = s.chain[s.cur].Reader()
		}
		ts, ol, data, err := s.r.Next()
		if err == nil {
			s.ts, s.origLen, s.data = ts, ol, data
			return true, nil
		}
		if !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read block: %w", err)
		}
		s.cur++
		s.r = nil
	}
	return false, nil
}

type mergeHeap []*stream

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].ts != h[j].ts {
		return h[i].ts < h[j].ts
	}
	return h[i].rank < h[j].rank
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*stream)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
