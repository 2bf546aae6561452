// Package rowkey is the one row layout every tapir storage backend uses:
// the binary row keys of packet blocks, of the flow index, of flow records,
// of batch dedupe markers and of per-sensor sequence numbers, and the
// values of block and flow-index rows. Pebble and HBase store the same
// bytes; see storage/README.md for the layout byte by byte and why.
//
// Keys are built with Append* functions that append to a caller's buffer
// (no allocation when it has room) and read back with Decode* functions
// that validate lengths and never panic on arbitrary input. Everything here
// is a pure function, safe for concurrent use.
package rowkey

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// ErrMalformed is returned by the Decode functions for bytes that are not
// a row of the expected kind.
var ErrMalformed = errors.New("rowkey: malformed row")

// Table names one keyspace. HBase keeps each in its own table; an
// embedded store with a single keyspace (Pebble) puts the Table byte in
// front of every row key. Row keys below never include it.
type Table byte

// Tables.
const (
	TableBlocks        Table = 'b' // packet blocks, by salt, flow key, time
	TableBlockAge      Table = 'a' // retention index: block last time -> block row
	TableCommunity     Table = 'c' // Community ID -> flow refs
	TableCommunityHash Table = 'k' // Community ID hash prefix + flow ID (Pebble, since tapir.flowref.v2)
	TableFlowID        Table = 'f' // flow ID -> flow ref
	TableRecords       Table = 'r' // flow records by start-time bucket
	TableLongRecords   Table = 'l' // long flow records by end-time bucket
	TableExpired       Table = 'x' // per flow key: span of blocks removed by retention
	TableDedupe        Table = 'd' // (sensor, batch seq) applied markers
	TableSeq           Table = 's' // per-sensor highest applied batch seq
	TableMeta          Table = 'm' // store-wide settings and counters
)

// Sizes of the fixed-width parts.
const (
	FlowKeyLen          = 1 + 1 + 16 + 16 + 2 + 2 + 2 + 2 // 42
	FlowPrefixLen       = 1 + FlowKeyLen                  // salt + key: 43
	TimeLen             = 8
	BlockKeyLen         = FlowPrefixLen + TimeLen + TimeLen + 4 + 16 + 4 // 83
	AgeKeyLen           = TimeLen + BlockKeyLen                          // 91
	CommunityLen        = 20                                             // SHA-1 of Community ID v1
	CommunityKeyLen     = CommunityLen + 16                              // 36
	CommunityHashLen    = 8                                              // hash bytes in a TableCommunityHash key
	CommunityHashKeyLen = CommunityHashLen + 16                          // 24
	FlowIDKeyLen        = 1 + 16                                         // 17
	RecordKeyLen        = TimeLen + 16                                   // 24
	SeqLen              = 8
)

// AppendTime appends a Unix-nanosecond time as 8 big-endian bytes with the
// sign bit flipped, so that byte order is time order, negative times
// included.
func AppendTime(dst []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ns)^(1<<63))
}

// DecodeTime is the inverse of AppendTime; b must hold at least 8 bytes.
func DecodeTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// Bucket returns ns truncated down to a multiple of width (floor, also
// for negative times). A width <= 0 returns ns unchanged.
func Bucket(ns, width int64) int64 {
	if width <= 0 {
		return ns
	}
	r := ns % width
	if r < 0 {
		r += width
	}
	return ns - r
}

// NanosOr returns t in Unix nanoseconds, or def when t is the zero time
// (an open end of a query window).
func NanosOr(t time.Time, def int64) int64 {
	if t.IsZero() {
		return def
	}
	return t.UnixNano()
}

// SubSat returns a - b for b >= 0, saturating at math.MinInt64 instead of
// wrapping around (window starts minus a flow's longest span).
func SubSat(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// NextBucket returns the start of the bucket after the one holding ns,
// saturating at the largest representable bucket.
func NextBucket(ns, width int64) int64 {
	b := Bucket(ns, width)
	if width <= 0 {
		if b == math.MaxInt64 {
			return b
		}
		return b + 1
	}
	if b > math.MaxInt64-width {
		return math.MaxInt64
	}
	return b + width
}

// AppendFlowKey appends the 42-byte fixed-width form of a canonical flow
// key: family, proto, A (16), B (16), port A, port B, VLAN, inner VLAN,
// integers big-endian.
func AppendFlowKey(dst []byte, k *flow.Key) []byte {
	dst = append(dst, k.Family, k.Proto)
	dst = append(dst, k.A[:]...)
	dst = append(dst, k.B[:]...)
	dst = binary.BigEndian.AppendUint16(dst, k.PortA)
	dst = binary.BigEndian.AppendUint16(dst, k.PortB)
	dst = binary.BigEndian.AppendUint16(dst, k.VLAN)
	return binary.BigEndian.AppendUint16(dst, k.InnerVLAN)
}

// DecodeFlowKey reads the form written by AppendFlowKey from the first
// FlowKeyLen bytes of b.
func DecodeFlowKey(b []byte) (flow.Key, error) {
	var k flow.Key
	if len(b) < FlowKeyLen {
		return k, fmt.Errorf("%w: flow key of %d bytes", ErrMalformed, len(b))
	}
	k.Family, k.Proto = b[0], b[1]
	copy(k.A[:], b[2:18])
	copy(k.B[:], b[18:34])
	k.PortA = binary.BigEndian.Uint16(b[34:])
	k.PortB = binary.BigEndian.Uint16(b[36:])
	k.VLAN = binary.BigEndian.Uint16(b[38:])
	k.InnerVLAN = binary.BigEndian.Uint16(b[40:])
	return k, nil
}

// fnv-1a, 32 bit.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

func saltOf(b []byte) byte {
	h := uint32(fnvOffset)
	for _, c := range b {
		h ^= uint32(c)
		h *= fnvPrime
	}
	return byte(h ^ h>>8 ^ h>>16 ^ h>>24)
}

// AppendFlowPrefix appends salt and flow key (43 bytes): the prefix shared
// by every block row of the flow key, in both directions.
func AppendFlowPrefix(dst []byte, k *flow.Key) []byte {
	n := len(dst)
	dst = append(dst, 0)
	dst = AppendFlowKey(dst, k)
	dst[n] = saltOf(dst[n+1:])
	return dst
}

// BlockKey is the decoded row key of one packet block.
type BlockKey struct {
	Key    flow.Key
	Bucket int64  // First truncated to the store's time bucket
	First  int64  // first packet time, Unix ns
	Sensor uint32 // flow.SensorHash of the sensor ID
	FlowID flow.ID
	Seq    uint32 // block number within the flow
}

// AppendBlockKey appends the 83-byte block row key: salt, flow key,
// bucket, first time, sensor hash, flow ID, block seq.
func AppendBlockKey(dst []byte, bk *BlockKey) []byte {
	dst = AppendFlowPrefix(dst, &bk.Key)
	dst = AppendTime(dst, bk.Bucket)
	dst = AppendTime(dst, bk.First)
	dst = binary.BigEndian.AppendUint32(dst, bk.Sensor)
	dst = append(dst, bk.FlowID[:]...)
	return binary.BigEndian.AppendUint32(dst, bk.Seq)
}

// DecodeBlockKey reads a block row key, checking its length and its salt.
func DecodeBlockKey(b []byte) (BlockKey, error) {
	var bk BlockKey
	if len(b) != BlockKeyLen {
		return bk, fmt.Errorf("%w: block key of %d bytes", ErrMalformed, len(b))
	}
	if saltOf(b[1:FlowPrefixLen]) != b[0] {
		return bk, fmt.Errorf("%w: block key salt mismatch", ErrMalformed)
	}
	bk.Key, _ = DecodeFlowKey(b[1:])
	p := b[FlowPrefixLen:]
	bk.Bucket = DecodeTime(p)
	bk.First = DecodeTime(p[8:])
	bk.Sensor = binary.BigEndian.Uint32(p[16:])
	copy(bk.FlowID[:], p[20:36])
	bk.Seq = binary.BigEndian.Uint32(p[36:])
	return bk, nil
}

// AppendAgeKey appends a retention index row key: the block's last packet
// time followed by its block row key, so a forward scan meets blocks in
// the order retention removes them.
func AppendAgeKey(dst []byte, last int64, blockKey []byte) []byte {
	dst = AppendTime(dst, last)
	return append(dst, blockKey...)
}

// DecodeAgeKey splits a retention index row key; blockKey aliases b.
func DecodeAgeKey(b []byte) (last int64, blockKey []byte, err error) {
	if len(b) != AgeKeyLen {
		return 0, nil, fmt.Errorf("%w: age key of %d bytes", ErrMalformed, len(b))
	}
	return DecodeTime(b), b[TimeLen:], nil
}

// ParseCommunityID returns the 20 hash bytes of a Community ID v1 string
// ("1:" + base64 of a SHA-1).
func ParseCommunityID(s string) ([CommunityLen]byte, bool) {
	var h [CommunityLen]byte
	if len(s) != flow.CommunityIDLen || s[0] != '1' || s[1] != ':' {
		return h, false
	}
	// 28 characters without padding decode to 21 bytes: Decode must have
	// room for them (into h alone it panicked on such input).
	var buf [CommunityLen + 1]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s[2:]))
	if err != nil || n != CommunityLen {
		return h, false
	}
	copy(h[:], buf[:CommunityLen])
	return h, true
}

// AppendCommunityKey appends a Community ID index row key: the 20 hash
// bytes then the flow ID (which starts with the flow's first-seen time, so
// instances of a reused 5-tuple sort oldest first). The hash is already
// uniform: no salt.
func AppendCommunityKey(dst []byte, cid *[CommunityLen]byte, id flow.ID) []byte {
	dst = append(dst, cid[:]...)
	return append(dst, id[:]...)
}

// DecodeCommunityKey splits a Community ID index row key.
func DecodeCommunityKey(b []byte) (cid [CommunityLen]byte, id flow.ID, err error) {
	if len(b) != CommunityLen+len(id) {
		return cid, id, fmt.Errorf("%w: Community ID key of %d bytes", ErrMalformed, len(b))
	}
	copy(cid[:], b)
	copy(id[:], b[CommunityLen:])
	return cid, id, nil
}

// AppendCommunityHashKey appends a short Community ID index row key
// (TableCommunityHash): the first CommunityHashLen bytes of the hash then
// the flow ID. Its rows hold no value; a reader reads the flow ID row the
// key names and keeps it only when the flow's Community ID is the one
// looked up (two Community IDs share a prefix about once in 2^64 pairs).
// An embedded store writes these rather than AppendCommunityKey's: their
// keys are random, so every compaction of their level rewrites them, and
// at a third fewer bytes they cost a third less to rewrite.
func AppendCommunityHashKey(dst []byte, cid *[CommunityLen]byte, id flow.ID) []byte {
	dst = append(dst, cid[:CommunityHashLen]...)
	return append(dst, id[:]...)
}

// DecodeCommunityHashKey splits a short Community ID index row key.
func DecodeCommunityHashKey(b []byte) (prefix [CommunityHashLen]byte, id flow.ID, err error) {
	if len(b) != CommunityHashKeyLen {
		return prefix, id, fmt.Errorf("%w: Community ID hash key of %d bytes", ErrMalformed, len(b))
	}
	copy(prefix[:], b)
	copy(id[:], b[CommunityHashLen:])
	return prefix, id, nil
}

// AppendFlowIDKey appends a flow ID index row key: a salt byte (the flow
// ID starts with a time, which would make every write hit one region)
// then the ID.
func AppendFlowIDKey(dst []byte, id flow.ID) []byte {
	dst = append(dst, saltOf(id[:]))
	return append(dst, id[:]...)
}

// AppendOrderedFlowIDKey appends the flow ID index row key of a store
// that keeps these rows in flow ID order, which is first-seen time order:
// a zero salt byte, then the ID. An embedded store (Pebble) has no
// regions to spread writes over; in ID order its new rows land after the
// old ones, so compactions move older tables down a level instead of
// rewriting them with every flush, as salted rows (spread over the whole
// table) made them do.
func AppendOrderedFlowIDKey(dst []byte, id flow.ID) []byte {
	dst = append(dst, 0)
	return append(dst, id[:]...)
}

// AppendRecordKey appends a flow record row key: a time bucket (of the
// flow start for TableRecords, of its end for TableLongRecords) then the
// flow ID. Updates of a flow overwrite one row.
func AppendRecordKey(dst []byte, bucket int64, id flow.ID) []byte {
	dst = AppendTime(dst, bucket)
	return append(dst, id[:]...)
}

// DecodeRecordKey splits a record row key.
func DecodeRecordKey(b []byte) (bucket int64, id flow.ID, err error) {
	if len(b) != RecordKeyLen {
		return 0, id, fmt.Errorf("%w: record key of %d bytes", ErrMalformed, len(b))
	}
	copy(id[:], b[TimeLen:])
	return DecodeTime(b), id, nil
}

// AppendSensorKey appends a sensor ID as a 2-byte big-endian length and its
// bytes: the TableSeq row key, and the prefix of the sensor's dedupe rows.
func AppendSensorKey(dst []byte, sensorID string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sensorID)))
	return append(dst, sensorID...)
}

// AppendDedupeKey appends a batch dedupe marker row key: the sensor key
// then the batch seq, 8 bytes big-endian.
func AppendDedupeKey(dst []byte, sensorID string, seq uint64) []byte {
	dst = AppendSensorKey(dst, sensorID)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// DecodeDedupeKey is the inverse of AppendDedupeKey.
func DecodeDedupeKey(b []byte) (sensorID string, seq uint64, err error) {
	if len(b) < 2 {
		return "", 0, fmt.Errorf("%w: dedupe key of %d bytes", ErrMalformed, len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+n+SeqLen {
		return "", 0, fmt.Errorf("%w: dedupe key of %d bytes for a %d-byte sensor", ErrMalformed, len(b), n)
	}
	return string(b[2 : 2+n]), binary.BigEndian.Uint64(b[2+n:]), nil
}

// AppendSeqKey appends a TableSeq row key: the sensor key, then for a
// non-zero epoch the epoch, 8 bytes big-endian. Epoch 0 (a legacy sensor)
// is the bare sensor key, so markers written before epochs existed keep
// working.
func AppendSeqKey(dst []byte, sensorID string, epoch uint64) []byte {
	dst = AppendSensorKey(dst, sensorID)
	if epoch != 0 {
		dst = binary.BigEndian.AppendUint64(dst, epoch)
	}
	return dst
}

// AppendEpochDedupeKey appends a batch dedupe marker row key for
// (sensor, epoch, seq): AppendSeqKey then the seq, 8 bytes big-endian.
// Epoch 0 gives AppendDedupeKey's legacy key.
func AppendEpochDedupeKey(dst []byte, sensorID string, epoch, seq uint64) []byte {
	dst = AppendSeqKey(dst, sensorID, epoch)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// PrefixEnd returns the smallest key greater than every key with the
// given prefix, or nil when there is none (prefix all 0xff).
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// TableKey returns the table byte then the row key, in a new slice: the
// key of a row in a store that keeps every Table in one keyspace (Pebble,
// and the one HBase table).
func TableKey(t Table, row []byte) []byte {
	k := make([]byte, 0, 1+len(row))
	return append(append(k, byte(t)), row...)
}
