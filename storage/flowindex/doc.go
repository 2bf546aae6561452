// Package flowindex is tapir's flow search index: the registry of every
// searchable flow record field (its ECS name and type, a description, and
// how to read its values from a flow.Record), the postings an embedded
// store writes beside each batch of records, and the index lookups a
// query compiles to.
//
// The registry is the one list of fields: the query language matches
// field predicates with it, the index writes postings for its indexed
// fields, `top by FIELD` groups by it and GET /api/v1/fields lists it.
//
// Keys live behind the table byte 'i'. Each batch writes a record table
// (BatchKey: ID 0 and the batch's sequence number -> the row keys of its
// records) and one posting per distinct (field ID, hour of the flow's
// start, term) of the batch: the key is 'i', the ID (its high bit for a
// name's domain suffixes), the hour (4 bytes), the normalized term and
// the batch's sequence number; the value lists the ordinals of the
// term's records in the record table. Terms are normalized lossily (ASCII
// lower case, NUL as 0x01, at most MaxTerm bytes; fields of one kind of
// value share an ID): a lookup yields a superset of the matching records,
// which the query's Match then checks, so the index never decides a
// result on its own.
package flowindex
