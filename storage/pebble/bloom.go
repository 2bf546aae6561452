package pebble

import "github.com/cockroachdb/pebble/bloom"

// bloomPolicy makes point reads of absent keys (dedupe markers, new flow
// refs, new records) skip most sstables.
var bloomPolicy = bloom.FilterPolicy(10)
