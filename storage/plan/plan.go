// Package plan is what every storage backend computes around its reads
// and writes, whatever it keeps the rows in: the rows a batch writes and
// the flow refs it widens, the row ranges and window filters of a flow
// lookup, a block scan and a record scan, the blocks retention removes
// and the spans it records, and the encoding of a stored flow record.
// A backend (storage/pebble, storage/hbase) keeps only its own write and
// dedupe protocol and the scans of its client; the logic that decides
// what to read and write lives here once, so both backends answer alike.
//
// Every key here is a rowkey.TableKey: the rowkey.Table byte then the row
// key, as both backends lay out their one keyspace. Everything is a pure
// function or a value owned by one operation: safe for concurrent use as
// long as each operation has its own.
package plan

import (
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Layout is a store's fixed row layout, chosen when the store is created:
// the width of its time buckets and the length past which a flow is long
// (its record is also indexed by end time), both in nanoseconds.
type Layout struct {
	Bucket int64
	Long   int64
}

// Value returns the layout as the store keeps it in its meta row, to be
// compared with what an existing store holds.
func (l Layout) Value() []byte {
	return rowkey.AppendUint64(rowkey.AppendUint64(nil, uint64(l.Bucket)), uint64(l.Long))
}

// IsLong reports whether r is a long flow: one that ended more than Long
// after it started.
func (l Layout) IsLong(r *flow.Record) bool {
	return !r.End.IsZero() && r.End.Sub(r.Start) > time.Duration(l.Long)
}

// RecordKey returns the key of r's record row (by the bucket of its
// start).
func (l Layout) RecordKey(r *flow.Record) []byte {
	return rowkey.TableKey(rowkey.TableRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.Start.UnixNano(), l.Bucket), r.ID))
}

// LongKey returns the key of r's long-flow index row (by the bucket of
// its end).
func (l Layout) LongKey(r *flow.Record) []byte {
	return rowkey.TableKey(rowkey.TableLongRecords, rowkey.AppendRecordKey(nil, rowkey.Bucket(r.End.UnixNano(), l.Bucket), r.ID))
}

// SeqKey returns the key of the row holding a sensor's durable sequence
// in an epoch.
func SeqKey(sensorID string, epoch uint64) []byte {
	return rowkey.TableKey(rowkey.TableSeq, rowkey.AppendSeqKey(nil, sensorID, epoch))
}

// ExpiredKey returns the key of the removed-span row of a flow prefix
// (rowkey.FlowPrefixLen bytes, no table byte).
func ExpiredKey(prefix []byte) []byte {
	return rowkey.TableKey(rowkey.TableExpired, prefix)
}
