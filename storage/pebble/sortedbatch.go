package pebble

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble"
)

// rowWriter is what a write adds its rows to: a sortedBatch, or a Pebble
// batch directly.
type rowWriter interface {
	Set(key, value []byte, _ *pebble.WriteOptions) error
	Merge(key, value []byte, _ *pebble.WriteOptions) error
	Delete(key []byte, _ *pebble.WriteOptions) error
}

// sortedBatch gathers a write's row operations and adds them to a Pebble
// batch in key order (operations on one key keep their order). Pebble
// inserts a batch into its memtable, a skiplist, one key after the other,
// reusing the previous insert's position: keys in order make each insert
// start next to where the last ended instead of at the top of a list that
// no longer fits in the CPU's caches, which was a fifth of ingest's CPU
// with a batch's rows in the order they were made (records, refs in map
// order, postings by term). Its buffers are reused from batch to batch:
// the caller holds writeMu.
type sortedBatch struct {
	ops []rowOp
	buf []byte // every op's key then value
}

// rowOp is one operation: its kind, where its key and value are in
// sortedBatch.buf, and the key's first 16 bytes as two big-endian words
// (zero-padded), which order most pairs of keys without reading buf.
type rowOp struct {
	head           [2]uint64
	kind           byte
	keyEnd, valEnd int
	start          int
}

// keyHead returns the first 16 bytes of key as two big-endian words,
// zero-padded: comparing heads orders keys as bytes.Compare does, except
// that equal heads leave the rest (and the length) to compare.
func keyHead(key []byte) [2]uint64 {
	var w [16]byte
	copy(w[:], key)
	return [2]uint64{binary.BigEndian.Uint64(w[:8]), binary.BigEndian.Uint64(w[8:])}
}

// compareOps orders x and y by key, then by the order they were added.
func (b *sortedBatch) compareOps(x, y *rowOp) int {
	if c := cmp.Compare(x.head[0], y.head[0]); c != 0 {
		return c
	}
	if c := cmp.Compare(x.head[1], y.head[1]); c != 0 {
		return c
	}
	if c := bytes.Compare(b.key(x), b.key(y)); c != 0 {
		return c
	}
	return x.start - y.start // operations on one key in the order they came
}

const (
	opSet byte = iota
	opMerge
	opDelete
)

func (b *sortedBatch) add(kind byte, key, value []byte) error {
	start := len(b.buf)
	b.buf = append(b.buf, key...)
	keyEnd := len(b.buf)
	b.buf = append(b.buf, value...)
	b.ops = append(b.ops, rowOp{head: keyHead(key), kind: kind, start: start, keyEnd: keyEnd, valEnd: len(b.buf)})
	return nil
}

// Set adds a set of key to value.
func (b *sortedBatch) Set(key, value []byte, _ *pebble.WriteOptions) error {
	return b.add(opSet, key, value)
}

// Merge adds a merge operand of key.
func (b *sortedBatch) Merge(key, value []byte, _ *pebble.WriteOptions) error {
	return b.add(opMerge, key, value)
}

// Delete adds a deletion of key.
func (b *sortedBatch) Delete(key []byte, _ *pebble.WriteOptions) error {
	return b.add(opDelete, key, nil)
}

func (b *sortedBatch) key(o *rowOp) []byte { return b.buf[o.start:o.keyEnd] }

// applyTo adds the operations to wb in key order and empties b.
func (b *sortedBatch) applyTo(wb *pebble.Batch) error {
	slices.SortFunc(b.ops, func(x, y rowOp) int { return b.compareOps(&x, &y) })
	defer b.reset()
	for i := range b.ops {
		o := &b.ops[i]
		k, v := b.key(o), b.buf[o.keyEnd:o.valEnd]
		var err error
		switch o.kind {
		case opSet:
			err = wb.Set(k, v, nil)
		case opMerge:
			err = wb.Merge(k, v, nil)
		default:
			err = wb.Delete(k, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reset empties b, keeping its buffers.
func (b *sortedBatch) reset() {
	b.ops, b.buf = b.ops[:0], b.buf[:0]
}
