// Package recordcodec is the format in which the stores (storage/pebble,
// storage/hbase) keep flow records: a format of the storage layer's own,
// versioned, and independent of the wire schema (proto/tapirv1), so that a
// change of what sensors send never changes what is on disk.
//
// # Layout
//
// A stored value is a two-byte header, then the payload:
//
//	0xff     marker: this value is in a versioned stored format
//	version  one byte, the payload's format version (Version, now 1)
//	payload  the record, in the layout of that version
//
// Values written before this package existed hold a marshalled wire
// message, tapir.v1.FlowRecord, with no header ("legacy" values). The
// marker tells the two apart: a protobuf message begins with the tag of
// its first field, a varint whose first byte carries the field's wire type
// in its low three bits, and protobuf defines wire types 0 to 5 only. The
// marker's low three bits are 7, a wire type no protobuf encoder writes
// and every protobuf decoder rejects, so no legacy value (nor any protobuf
// message) can begin with 0xff. Legacy values are never empty either
// (they always carry the 16-byte flow id and both endpoints).
//
// The version 1 payload uses protobuf's encoding (tags, varints,
// length-delimited nested messages; see encoding/protowire), so
// `protoc --decode_raw` can show a value after its two header bytes, but
// its schema is this package's own: the field numbers, the nesting and
// the representation are written down once, in schema.go, where one
// function per message lists its fields for both Append and Decode. It
// differs from the wire message where storage gains: the end reason and
// the address family are small codes from tables kept here (not the
// flow package's constants or the wire's strings), timestamps after the
// flow's start are stored as differences from it, and strings are kept
// as the bytes they are (the wire requires UTF-8).
//
// # Compatibility rule
//
// Adding a field to flow.Record (or to a type it holds): add it to the
// matching function in schema.go under a field number that message has
// never used (numbers are never reused; the highest allowed is maxField;
// TestEveryFieldStored fails until the new field is stored).
// The version does not change: a reader that predates the field skips it
// (unknown fields are skipped), and a value written before it decodes
// with the field's zero value. Regenerate the golden value of the
// current version and commit it:
//
//	go test ./storage/recordcodec/ -run TestGolden -update
//
// Its diff shows the new field, and nothing else may change in it. (A
// build that predates the field drops it if it rewrites such a record;
// the stores rewrite a record only with a newer report of the flow.)
// Appending a code to a code table (a new end reason) needs no bump
// either, but a build that predates it reports records with that code as
// corrupt: deploy readers before writers.
//
// Bump the version (add a case to Decode, keep every older decoder and
// its golden file) for any change that an older reader would misread
// rather than skip: a field's number, wire type or meaning, a code
// table's existing entries (reasonCodes, familyCodes), the header, or a
// nested message replaced by another. Removing a field needs no bump:
// stop writing it and reserve its number in a comment.
//
// Old stores need no migration. Decode reads every version it knows and
// legacy values (through tapirv1.ToRecord); Append always writes the
// current version, so a store converges as records are rewritten or
// expire. The committed golden values under testdata (v1.golden, and
// legacy.golden for the wire format, each beside the record it holds in
// NAME.golden.json) must keep decoding forever: never regenerate the
// golden of a version that is no longer current.
//
// # Errors and safety
//
// Decode never panics on any input (a fuzz target checks it). A value with
// an unknown version fails with an error wrapping ErrUnknownVersion (a
// newer writer: upgrade the reader); a value that does not parse, or
// holds values out of range for their field, fails with one wrapping
// ErrCorrupt. Append fails, wrapping ErrUnencodable, only on a record that
// the format cannot give back exactly (an end reason or address family it
// has no code for, a time outside the years 1678 to 2262).
//
// Decode does not retain v: every string and byte slice of the record is
// a copy. Times come back in UTC. Append and Decode are safe for
// concurrent use.
package recordcodec
