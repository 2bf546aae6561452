package recordcodec

import (
	"errors"
	"fmt"

	"github.com/tapir-sensor/tapir/flow"
)

// Version is the format version Append writes.
const Version = 1

// marker is the first byte of every versioned value: its low three bits
// are wire type 7, which no protobuf message can begin with (see the
// package comment), so it never starts a legacy value.
const marker = 0xff

// headerLen is the length of the marker and the version byte.
const headerLen = 2

var (
	// ErrCorrupt is wrapped by Decode's errors for a value that does not
	// parse or holds a value its field cannot take.
	ErrCorrupt = errors.New("recordcodec: corrupt stored flow record")
	// ErrUnknownVersion is wrapped by Decode's errors for a value of a
	// format version this build does not know (written by a newer one).
	ErrUnknownVersion = errors.New("recordcodec: unknown stored flow record version")
	// ErrUnencodable is wrapped by Append's errors for a record the format
	// cannot give back exactly.
	ErrUnencodable = errors.New("recordcodec: flow record cannot be stored")
)

// Append appends the stored form of r (the current Version) to dst and
// returns the extended slice. On error it returns dst unchanged.
func Append(dst []byte, r *flow.Record) ([]byte, error) {
	c := getCoder(false, append(dst, marker, Version))
	defer putCoder(c)
	c.record(r)
	if c.err != nil {
		return dst, c.err
	}
	return c.buf, nil
}

// Decode sets *r to the record stored in v: a value Append wrote (any
// version this build knows) or a legacy value (a marshalled
// tapir.v1.FlowRecord). It does not retain v. On error, *r holds no
// meaningful record.
func Decode(v []byte, r *flow.Record) error {
	switch {
	case len(v) == 0:
		return fmt.Errorf("%w: empty value", ErrCorrupt)
	case v[0] != marker:
		return decodeLegacy(v, r)
	case len(v) < headerLen:
		return fmt.Errorf("%w: no version after the marker", ErrCorrupt)
	}
	switch v[1] {
	case 1:
		return decodeV1(v[headerLen:], r)
	}
	return fmt.Errorf("%w: version %d (this build reads up to %d)", ErrUnknownVersion, v[1], Version)
}

// decodeV1 decodes a version 1 payload.
func decodeV1(payload []byte, r *flow.Record) error {
	*r = flow.Record{}
	c := getCoder(true, nil)
	defer putCoder(c)
	if err := c.stack[0].parse(payload); err != nil {
		return err
	}
	c.record(r)
	return c.err
}
