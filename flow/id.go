package flow

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// ID is tapir's identifier of one flow instance. A Community ID repeats
// whenever a 5-tuple is reused; an ID does not: it is the flow's first-seen
// time (Unix nanoseconds), a 32-bit hash of the sensor ID, and a 32-bit
// per-sensor counter. IDs sort by first-seen time. The zero ID means
// "none".
//
// Uniqueness. Within one sensor process the counter does not repeat
// before 2^32 flows. Every process (sensor, or the collector's flow input
// for exporters) starts its counter at a random value (RandomSeq), so two
// runs that see flows with the same first-seen nanosecond (the same
// capture read twice, a restart) give them different IDs unless the two
// random starts are equal or differ by exactly the distance between two
// such flows in the runs' creation order: about 2^-32 per pair of runs
// when first-seen times are distinct, k^2/2^33 over k runs over the same
// packets (1.2e-4 for 1000 runs). Different sensors differ in the hash as
// well, and otherwise (an FNV-1a collision) still need the same
// nanosecond and counter.
type ID [16]byte

// RandomSeq returns a random starting value for an ID counter (math/rand/v2:
// seeded from the operating system at process start).
func RandomSeq() uint32 { return rand.Uint32() }

// ErrBadID is returned by ParseID for strings that are not flow IDs.
var ErrBadID = errors.New("flow: malformed flow id")

// NewID builds the ID of a flow first seen at start on the sensor whose
// SensorHash is sensor, with the sensor-local counter seq.
func NewID(start time.Time, sensor uint32, seq uint32) ID {
	var id ID
	binary.BigEndian.PutUint64(id[0:], uint64(start.UnixNano()))
	binary.BigEndian.PutUint32(id[8:], sensor)
	binary.BigEndian.PutUint32(id[12:], seq)
	return id
}

// SensorHash returns the 32-bit hash of a sensor ID used inside flow IDs.
func SensorHash(sensorID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(sensorID))
	return h.Sum32()
}

// Start returns the first-seen time encoded in the ID.
func (id ID) Start() time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(id[0:])))
}

// IsZero reports whether the ID is unset.
func (id ID) IsZero() bool { return id == ID{} }

// String renders the ID as 32 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses the 32-hex-digit form produced by String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 32 {
		return id, ErrBadID
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, ErrBadID
	}
	return id, nil
}
