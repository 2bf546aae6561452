// Package searchindex is the collector's OpenSearch indexer: it consumes
// the flows topic the collector publishes to Kafka, with its own consumer
// group, and writes each flow record into a daily index with the bulk API.
//
// One document per flow instance: the document id is the flow ID and the
// document version the record's segment, with external_gte versioning, so
// a later segment replaces an earlier one and an older segment arriving
// after a newer one (a resent batch, a replayed partition) is refused by
// OpenSearch (409, counted as stale) instead of overwriting it. The index
// is chosen from the flow's first-seen day (encoded in the flow ID), so
// every segment of a flow reaches the same index.
//
// At least once: offsets are committed only after OpenSearch accepted (or
// refused for good, counted and logged) every record up to them. A failed
// request, or documents refused with 429 or 5xx, are retried with
// exponential backoff until they succeed; meanwhile nothing more is read
// from Kafka (backpressure: Kafka holds the backlog). Records read twice
// after a crash are written again with the same id and version: no
// duplicates.
package searchindex
