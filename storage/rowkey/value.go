package rowkey

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/storage"
)

// Value format versions.
const (
	blockValueVersion = 1
	refValueVersion   = 1
)

// MaxStringLen bounds the sensor ID, interface and Community ID strings a
// row holds (the block header has the same bound).
const MaxStringLen = storage.MaxStringLen

func appendString(dst []byte, s string) []byte {
	if len(s) > MaxStringLen {
		s = s[:MaxStringLen]
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

func readString(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}

// blockValueFixed: version, last, packets, bytes, link type.
const blockValueFixed = 1 + 8 + 4 + 8 + 2

// AppendBlockValue appends a block row value: the parts of the block's
// Meta that the row key does not hold (last time, packet and byte counts,
// link type, Community ID, sensor ID, interface) then the encoded block,
// opaque.
func AppendBlockValue(dst []byte, m *block.Meta, encoded []byte) []byte {
	dst = append(dst, blockValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Last))
	dst = binary.BigEndian.AppendUint32(dst, m.Packets)
	dst = binary.BigEndian.AppendUint64(dst, m.Bytes)
	dst = binary.BigEndian.AppendUint16(dst, m.LinkType)
	dst = appendString(dst, m.CommunityID)
	dst = appendString(dst, m.SensorID)
	dst = appendString(dst, m.Interface)
	return append(dst, encoded...)
}

// DecodeBlock rebuilds a storage.Block from a block row's key and value.
// b.Encoded aliases value.
func DecodeBlock(key, value []byte, b *storage.Block) error {
	bk, err := DecodeBlockKey(key)
	if err != nil {
		return err
	}
	if len(value) < blockValueFixed || value[0] != blockValueVersion {
		return fmt.Errorf("%w: block value of %d bytes", ErrMalformed, len(value))
	}
	m := &b.Meta
	*m = block.Meta{Key: bk.Key, FlowID: bk.FlowID, Seq: bk.Seq, First: bk.First}
	m.Last = int64(binary.BigEndian.Uint64(value[1:]))
	m.Packets = binary.BigEndian.Uint32(value[9:])
	m.Bytes = binary.BigEndian.Uint64(value[13:])
	m.LinkType = binary.BigEndian.Uint16(value[21:])
	rest := value[blockValueFixed:]
	var ok bool
	if m.CommunityID, rest, ok = readString(rest); !ok {
		return fmt.Errorf("%w: block value community id", ErrMalformed)
	}
	if m.SensorID, rest, ok = readString(rest); !ok {
		return fmt.Errorf("%w: block value sensor id", ErrMalformed)
	}
	if m.Interface, rest, ok = readString(rest); !ok {
		return fmt.Errorf("%w: block value interface", ErrMalformed)
	}
	b.Encoded = rest
	return nil
}

// refValueFixed: version, first, last, key, flow id.
const refValueFixed = 1 + 8 + 8 + FlowKeyLen + 16

// AppendRef appends a flow index row value: first and last packet times
// (Unix ns, 0 for the zero time), the canonical key, the flow ID, sensor
// ID and Community ID.
func AppendRef(dst []byte, r *storage.FlowRef) []byte {
	dst = append(dst, refValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(r.First)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(unixNano(r.Last)))
	dst = AppendFlowKey(dst, &r.Key)
	dst = append(dst, r.FlowID[:]...)
	dst = appendString(dst, r.SensorID)
	return appendString(dst, r.CommunityID)
}

// DecodeRef is the inverse of AppendRef.
func DecodeRef(v []byte, r *storage.FlowRef) error {
	if len(v) < refValueFixed || v[0] != refValueVersion {
		return fmt.Errorf("%w: flow ref of %d bytes", ErrMalformed, len(v))
	}
	*r = storage.FlowRef{
		First: fromUnixNano(int64(binary.BigEndian.Uint64(v[1:]))),
		Last:  fromUnixNano(int64(binary.BigEndian.Uint64(v[9:]))),
	}
	r.Key, _ = DecodeFlowKey(v[17:])
	copy(r.FlowID[:], v[17+FlowKeyLen:])
	rest := v[refValueFixed:]
	var ok bool
	if r.SensorID, rest, ok = readString(rest); !ok {
		return fmt.Errorf("%w: flow ref sensor id", ErrMalformed)
	}
	if r.CommunityID, rest, ok = readString(rest); !ok || len(rest) != 0 {
		return fmt.Errorf("%w: flow ref community id", ErrMalformed)
	}
	return nil
}

// Span is the time span [First, Last] (Unix ns) of the blocks of one flow
// key that retention removed: the TableExpired row value.
type Span struct{ First, Last int64 }

// AppendSpan appends a Span as two 8-byte times.
func AppendSpan(dst []byte, s Span) []byte {
	dst = AppendTime(dst, s.First)
	return AppendTime(dst, s.Last)
}

// Union returns the smallest span holding s and o.
func (s Span) Union(o Span) Span {
	return Span{First: min(s.First, o.First), Last: max(s.Last, o.Last)}
}

// ExpiredIn checks a flow key's TableExpired row value v against a
// retrieval of [lo, hi] (Unix ns): when retention removed blocks of the
// key inside that window it returns an error wrapping
// storage.ErrPacketsExpired that names the key and the removed span.
func ExpiredIn(key string, v []byte, lo, hi int64) error {
	span, err := DecodeSpan(v)
	if err != nil {
		return err
	}
	if span.First <= hi && span.Last >= lo {
		return fmt.Errorf("%w: %s blocks in %s..%s removed", storage.ErrPacketsExpired, key,
			time.Unix(0, span.First).UTC().Format(time.RFC3339Nano), time.Unix(0, span.Last).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// DecodeSpan is the inverse of AppendSpan.
func DecodeSpan(b []byte) (Span, error) {
	if len(b) != 2*TimeLen {
		return Span{}, fmt.Errorf("%w: span of %d bytes", ErrMalformed, len(b))
	}
	return Span{DecodeTime(b), DecodeTime(b[8:])}, nil
}

// AppendUint64 appends v big-endian (sequence numbers, counters).
func AppendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// DecodeUint64 reads an 8-byte big-endian value.
func DecodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: counter of %d bytes", ErrMalformed, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
