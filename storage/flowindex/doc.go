// Package flowindex is tapir's flow search index: the registry of every
// searchable flow record field (its ECS name and type, a description, and
// how to read its values from a flow.Record), the postings an embedded
// store writes beside each record, and the index lookups a query compiles
// to.
//
// The registry is the one list of fields: the query language matches
// field predicates with it, the index writes postings for its indexed
// fields, `top by FIELD` groups by it and GET /api/v1/fields lists it.
//
// A posting is one key, no value (see Keys): the table byte 'i', the
// field's index ID (with the high bit for reversed values), the hour of
// the flow's start (4 bytes), the normalized term, and the 24-byte key
// of the record row (start bucket, flow ID). Terms are normalized lossily
// (ASCII lower case, NUL as 0x01, at most MaxTerm bytes): a lookup
// yields a superset of the matching records, which the query's Match
// then checks, so the index never decides a result on its own.
package flowindex
