package pebble

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// Config configures a Store. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// TimeBucket is the width of the time bucket in block row keys (see
	// storage/README.md). It is fixed when the store is created: opening
	// a store with a different value fails.
	TimeBucket time.Duration `yaml:"time_bucket"`
	// LongFlow is the flow duration above which a flow record is also
	// indexed by its end time, so that ScanRecords finds flows that
	// started long before the window. ScanRecords reads the start-time
	// index from (from - LongFlow). Fixed when the store is created.
	LongFlow time.Duration `yaml:"long_flow"`
	// MinFreeBytes makes Write fail with ErrDiskFull, before touching the
	// store, when the file system holding it has less free space than
	// this plus the batch. It keeps room for Pebble's own compactions
	// and manifest, whose write failures Pebble cannot recover from.
	// 0 disables the check.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// CacheBytes is the size of Pebble's block cache for sstable blocks
	// (index, bloom filter and data blocks). Pebble charges its memtables
	// to the same cache (each memtable reserves its size), so the store
	// creates it with CacheBytes + 2 x MemTableBytes: CacheBytes are left
	// for blocks while the mutable memtable and the one Pebble keeps for
	// reuse are allocated.
	CacheBytes int64 `yaml:"cache_bytes"`
	// MemTableBytes is the size of one Pebble memtable. Each flush writes
	// one memtable into L0 across the whole keyspace (records, flow refs,
	// Community IDs, postings), so fewer, larger flushes mean fewer
	// compactions of the same bytes: 64 MiB wrote about a fifth fewer
	// compaction bytes per record than 32 MiB.
	MemTableBytes int64 `yaml:"memtable_bytes"`
	// L0CompactionThreshold is how many overlapping L0 sublevels (about
	// one per memtable flush) start a compaction into the base level;
	// writes stop at twice as many (at least 12). Each such compaction
	// rewrites base-level tables across the keyspace (a flush spans the
	// records and every indexed field), so a higher value makes ingest
	// cheaper and reads slower (searches and scans merge up to this many
	// L0 files). 8 (Pebble's default is 4) wrote about a fifth fewer
	// compaction bytes per record and ingested about 15 % more flows per
	// CPU second than 4, with searches as fast in our runs; 16 made the
	// median search about 40 % slower.
	L0CompactionThreshold int `yaml:"l0_compaction_threshold"`
	// LBaseMaxBytes is the size of the base level (the one L0 compacts
	// into); each level below is ten times the one above. Every L0
	// compaction rewrites the base-level tables its flushes overlap, which
	// is all of them (a flush spans the keyspace), so a base level much
	// smaller than what L0 holds before it compacts (about
	// l0_compaction_threshold flushes) is rewritten several times over and
	// pushed down a level sooner. 512 MiB (Pebble's default is 64 MiB):
	// with the default memtable and L0 threshold, 64 MiB wrote 610-680
	// compaction bytes per record at 1 M records, 256 MiB about 400 at
	// 1 M and 610 at 3 M, 512 MiB about 400 at 1 M and 440 at 3 M
	// (1024 MiB: 530 at 3 M).
	LBaseMaxBytes int64 `yaml:"lbase_max_bytes"`
	// ExpireBatchBlocks is how many blocks Expire removes per synced
	// batch; the data bytes counter and the expired watermarks commit
	// with each batch.
	ExpireBatchBlocks int `yaml:"expire_batch_blocks"`
	// WALRecovery is what Open does when a write-ahead log is damaged
	// before its end (a torn tail, as a crash or a full disk leaves it,
	// is normal and replayed up to the tear): "strict" (default) refuses
	// to open, naming the file and byte offsets; "salvage" keeps a copy,
	// rewrites the log without the damaged records and reports what was
	// lost (WALStrict, WALSalvage).
	WALRecovery string `yaml:"wal_recovery"`
	// SearchIndex writes the flow search index (postings of the indexed
	// fields, in the batch of each record), which flow searches use. A
	// store opened with it off forgets that its index is complete; turn
	// it back on and run `tapir-collector reindex` to rebuild it.
	SearchIndex bool `yaml:"search_index"`
	// FS is the file system Pebble uses (tests inject errors with it);
	// nil means the operating system's.
	FS vfs.FS `yaml:"-"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		TimeBucket:            time.Minute,
		LongFlow:              10 * time.Minute,
		MinFreeBytes:          256 << 20,
		CacheBytes:            64 << 20,
		MemTableBytes:         64 << 20,
		L0CompactionThreshold: 8,
		LBaseMaxBytes:         512 << 20,
		ExpireBatchBlocks:     1024,
		WALRecovery:           WALStrict,
		SearchIndex:           true,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.TimeBucket < time.Second {
		errs = append(errs, fmt.Errorf("time_bucket %v: must be at least 1s", c.TimeBucket))
	}
	if c.LongFlow < time.Second {
		errs = append(errs, fmt.Errorf("long_flow %v: must be at least 1s", c.LongFlow))
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, fmt.Errorf("min_free_bytes %d: must not be negative", c.MinFreeBytes))
	}
	if c.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("cache_bytes %d: must be at least 1 MiB", c.CacheBytes))
	}
	if c.MemTableBytes < 1<<20 || c.MemTableBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("memtable_bytes %d: must be within 1 MiB..1 GiB", c.MemTableBytes))
	}
	if c.L0CompactionThreshold < 2 || c.L0CompactionThreshold > 64 {
		errs = append(errs, fmt.Errorf("l0_compaction_threshold %d: must be within 2..64", c.L0CompactionThreshold))
	}
	if c.LBaseMaxBytes < 4<<20 || c.LBaseMaxBytes > 64<<30 {
		errs = append(errs, fmt.Errorf("lbase_max_bytes %d: must be within 4 MiB..64 GiB", c.LBaseMaxBytes))
	}
	if c.ExpireBatchBlocks < 1 {
		errs = append(errs, fmt.Errorf("expire_batch_blocks %d: must be positive", c.ExpireBatchBlocks))
	}
	if c.WALRecovery != "" && c.WALRecovery != WALStrict && c.WALRecovery != WALSalvage {
		errs = append(errs, fmt.Errorf("wal_recovery %q: must be strict or salvage", c.WALRecovery))
	}
	return errors.Join(errs...)
}
