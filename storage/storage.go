// Package storage defines how the collector keeps packet blocks and flow
// records: a few small interfaces, one row key codec shared by every
// backend (see README.md), and a contract test suite (storage/storagetest)
// that every backend passes. Backends live in subpackages
// (storage/pebble, storage/hbase).
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// Sentinel errors shared by every backend.
var (
	// ErrFlowUnknown: no flow with that ID or Community ID is indexed.
	ErrFlowUnknown = errors.New("storage: flow unknown")
	// ErrPacketsExpired: the flow is known (its record is kept) but its
	// packets were removed by retention.
	ErrPacketsExpired = errors.New("storage: packets expired")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("storage: store closed")
	// ErrInvalidBatch: the batch itself can never be stored (a block or
	// record the store cannot key). Retrying it is pointless: the
	// collector rejects it instead of waiting for the store.
	ErrInvalidBatch = errors.New("storage: invalid batch")
	// ErrCorrupt: the store holds damaged data where the operation read
	// (a checksum mismatch in a file). The error names what was read (the
	// flow); the data is not "missing" or "not yet stored": it is
	// damaged, and an answer built without it would be wrong.
	ErrCorrupt = errors.New("storage: data corrupt")
)

// Block is one encoded packet block with its parsed header.
type Block struct {
	Meta    block.Meta
	Encoded []byte // the whole encoded block, header included
}

// Batch is what one sensor batch writes: blocks and flow records, applied
// atomically and at most once per (SensorID, Epoch, Seq).
type Batch struct {
	SensorID string
	// Epoch is the sensor's sequence space (drawn when its spool was
	// created); 0 is a legacy sensor whose markers carry no epoch.
	Epoch   uint64
	Seq     uint64
	Blocks  []Block
	Records []flow.Record
}

// FlowRef locates a flow's packets: its canonical key, ids, the sensors
// that saw it, and the time span of its packets.
type FlowRef struct {
	Key         flow.Key
	FlowID      flow.ID
	CommunityID string
	SensorID    string
	First, Last time.Time
}

// Writer applies batches. Implementations are safe for concurrent use.
type Writer interface {
	// Write applies the batch durably (synced) and atomically. A batch
	// whose (SensorID, Epoch, Seq) was already applied is skipped and
	// reported with applied == false and a nil error, so a retry after a
	// crash never duplicates data.
	Write(ctx context.Context, b *Batch) (applied bool, err error)
	// DurableSeq returns the highest Seq applied for the sensor in the
	// epoch (0 if none: an unknown epoch has nothing durable).
	DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error)
}

// Reader answers retrieval. Implementations are safe for concurrent use.
type Reader interface {
	// LookupFlow resolves a Community ID ("1:...") or a tapir flow ID (32
	// hex digits) to the flow instances it names, optionally narrowed to
	// those overlapping [from, to] (zero times mean unbounded).
	// It returns ErrFlowUnknown when nothing matches.
	LookupFlow(ctx context.Context, id string, from, to time.Time) ([]FlowRef, error)
	// ScanBlocks calls fn for every block of the flow key whose time span
	// overlaps [from, to], in time order, from every sensor. fn's Block is
	// valid only during the call. It returns ErrPacketsExpired when the
	// window is older than what retention kept: retention removed blocks
	// of this key overlapping the window (fn has then been called for the
	// blocks still kept, if any, so the caller may serve a partial
	// result). A key with no blocks in the window and none removed yields
	// no call and a nil error.
	ScanBlocks(ctx context.Context, key flow.Key, from, to time.Time, fn func(*Block) error) error
	// ScanRecords calls fn for every flow record whose flow overlaps
	// [from, to] (both required), newest report per flow instance only,
	// in start-time order; fn returning an error stops the scan.
	ScanRecords(ctx context.Context, from, to time.Time, fn func(*flow.Record) error) error
}

// Retention removes old data. Expiring packets keeps flow records and the
// index, so an expired flow answers ErrPacketsExpired.
type Retention interface {
	// Expire removes packet blocks older than olderThan and, if the
	// packet data is larger than maxBytes (0 = no limit), the oldest
	// blocks until it fits. It never removes a block newer than needed.
	Expire(ctx context.Context, olderThan time.Time, maxBytes int64) (ExpireStats, error)
}

// ExpireStats reports what one Expire call removed.
type ExpireStats struct {
	Blocks, Bytes int64
}

// BlockStore is a complete backend.
type BlockStore interface {
	Writer
	Reader
	Retention
	// Close flushes and releases the store. It is idempotent.
	Close() error
}

// Searcher is a Reader that keeps a flow search index (the embedded
// Pebble store; HBase deployments search through the downstream engine
// and scan). Implementations are safe for concurrent use.
type Searcher interface {
	// SearchRecords calls fn, as ScanRecords(from, to) would and in the
	// same order, for the records of the window that the index lookup
	// yields: a superset of the records matching it, which the caller
	// checks (the index never decides a match on its own). It returns
	// used == false without calling fn when the index cannot answer
	// (missing, being rebuilt, or the lookup is not selective enough to
	// beat a scan): the caller then scans.
	SearchRecords(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(*flow.Record) error) (used bool, err error)
}
