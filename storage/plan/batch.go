package plan

import (
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Batch is what a storage.Batch writes, before any backend I/O: its
// packet block rows, the newest report of each of its flows, and the flow
// refs its blocks widen.
type Batch struct {
	// DedupeKey is the key of the batch's dedupe marker row.
	DedupeKey []byte
	// SeqKey is the key of the sensor's durable sequence row.
	SeqKey []byte
	// Blocks are the batch's block rows, each row once (of a block sent
	// twice in the batch, the first).
	Blocks []BlockRow
	// Records are the newest segment of each flow's records (see
	// NewestRecords).
	Records []*flow.Record
	// Refs holds the flow refs of Blocks; a backend adds those of the
	// Records it stores (RecordRef).
	Refs Refs
	// Bytes is the sum of the encoded sizes of Blocks.
	Bytes int64
	// MaxSpan is the longest Last-First of Blocks (0 when none).
	MaxSpan int64
}

// BlockRow is one packet block row of a batch.
type BlockRow struct {
	// Meta is the block's header, its sensor ID filled in from the batch.
	Meta    block.Meta
	Encoded []byte
	// Key is the row's key (rowkey.TableBlocks then the block key).
	Key []byte
}

// Size returns the encoded block's size in bytes.
func (r *BlockRow) Size() int64 { return int64(len(r.Encoded)) }

// AppendValue appends the row's value to dst.
func (r *BlockRow) AppendValue(dst []byte) []byte {
	return rowkey.AppendBlockValue(dst, &r.Meta, r.Encoded)
}

// AgeKey returns the key of the block's retention index row.
func (r *BlockRow) AgeKey() []byte {
	return AgeKey(r.Meta.Last, r.Key)
}

// AgeValue returns the value of the block's retention index row: its
// encoded size.
func (r *BlockRow) AgeValue() []byte {
	return rowkey.AppendUint64(nil, uint64(r.Size()))
}

// AgeKey returns the key of the retention index row of a block that ends
// at last, whose row key (table byte included) is blockKey.
func AgeKey(last int64, blockKey []byte) []byte {
	k := append(make([]byte, 0, 1+rowkey.AgeKeyLen), byte(rowkey.TableBlockAge))
	return rowkey.AppendAgeKey(k, last, blockKey[1:])
}

// Plan returns what b writes in a store of layout l, or the error of
// storage.ValidateBatch (wrapping storage.ErrInvalidBatch) when b can
// never be stored.
func (l Layout) Plan(b *storage.Batch) (*Batch, error) {
	if err := storage.ValidateBatch(b); err != nil {
		return nil, err
	}
	p := &Batch{
		DedupeKey: rowkey.TableKey(rowkey.TableDedupe, rowkey.AppendEpochDedupeKey(nil, b.SensorID, b.Epoch, b.Seq)),
		SeqKey:    SeqKey(b.SensorID, b.Epoch),
		Records:   NewestRecords(b.SensorID, b.Records),
		Refs:      make(Refs),
		Blocks:    make([]BlockRow, 0, len(b.Blocks)),
	}
	seen := make(map[string]bool, len(b.Blocks))
	for i := range b.Blocks {
		row := l.blockRow(b.SensorID, &b.Blocks[i])
		if seen[string(row.Key)] {
			continue // the same block twice in one batch: keep the first
		}
		seen[string(row.Key)] = true
		p.Blocks = append(p.Blocks, row)
		p.Bytes += row.Size()
		p.MaxSpan = max(p.MaxSpan, row.Meta.Last-row.Meta.First)
		p.Refs.Add(BlockRef(&row.Meta))
	}
	return p, nil
}

// blockRow keys one block of a batch from sensorID.
func (l Layout) blockRow(sensorID string, blk *storage.Block) BlockRow {
	m := blk.Meta
	if m.SensorID == "" {
		m.SensorID = sensorID
	}
	bk := rowkey.BlockKey{Key: m.Key, Bucket: rowkey.Bucket(m.First, l.Bucket), First: m.First,
		Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
	key := append(make([]byte, 0, 1+rowkey.BlockKeyLen), byte(rowkey.TableBlocks))
	return BlockRow{Meta: m, Encoded: blk.Encoded, Key: rowkey.AppendBlockKey(key, &bk)}
}

// Refs gathers the flow refs of a batch, one per flow instance.
type Refs map[flow.ID]*storage.FlowRef

// Add merges r into the ref of its flow instance (storage.FlowRef.Merge).
func (rs Refs) Add(r storage.FlowRef) {
	p := rs[r.FlowID]
	if p == nil {
		p = &storage.FlowRef{}
		rs[r.FlowID] = p
	}
	p.Merge(&r)
}

// BlockRef returns the flow ref a block's header gives.
func BlockRef(m *block.Meta) storage.FlowRef {
	return storage.FlowRef{Key: m.Key, FlowID: m.FlowID, CommunityID: m.CommunityID, SensorID: m.SensorID,
		First: time.Unix(0, m.First).UTC(), Last: time.Unix(0, m.Last).UTC()}
}

// RecordRef returns the flow ref a flow record gives.
func RecordRef(r *flow.Record) storage.FlowRef {
	return storage.FlowRef{Key: r.Key(), FlowID: r.ID, CommunityID: r.CommunityID, SensorID: r.SensorID,
		First: r.Start, Last: r.End}
}

// FlowIDKey returns the key of a flow's flow ID index row.
func FlowIDKey(id flow.ID) []byte {
	return rowkey.TableKey(rowkey.TableFlowID, rowkey.AppendFlowIDKey(nil, id))
}

// OrderedFlowIDKey returns the key of a flow's flow ID index row in a
// store that keeps those rows in flow ID order (rowkey.AppendOrderedFlowIDKey).
func OrderedFlowIDKey(id flow.ID) []byte {
	return rowkey.TableKey(rowkey.TableFlowID, rowkey.AppendOrderedFlowIDKey(nil, id))
}

// CommunityKey returns the key of a flow's Community ID index row, and
// false when communityID is not a Community ID v1.
func CommunityKey(communityID string, id flow.ID) ([]byte, bool) {
	cid, ok := rowkey.ParseCommunityID(communityID)
	if !ok {
		return nil, false
	}
	return rowkey.TableKey(rowkey.TableCommunity, rowkey.AppendCommunityKey(nil, &cid, id)), true
}

// CommunityHashKey returns the key of a flow's short Community ID index
// row (rowkey.AppendCommunityHashKey), and false when communityID is not
// a Community ID v1.
func CommunityHashKey(communityID string, id flow.ID) ([]byte, bool) {
	cid, ok := rowkey.ParseCommunityID(communityID)
	if !ok {
		return nil, false
	}
	return rowkey.TableKey(rowkey.TableCommunityHash, rowkey.AppendCommunityHashKey(nil, &cid, id)), true
}
