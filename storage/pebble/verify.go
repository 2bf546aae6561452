package pebble

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/sstable"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// TableCheck is the result of checking one sstable.
type TableCheck struct {
	File  string // e.g. 000017.sst
	Level int
	Size  uint64
	// Tables are the keyspaces (rowkey table bytes, as characters) the
	// file's key range spans: what a damaged file affects.
	Tables string
	Err    error // nil when every block's checksum matched
}

// Verify reads every block of every live sstable and checks its
// checksum, so that damage is found before a retrieval meets it. It
// returns every file checked; the error wraps storage.ErrCorrupt when any
// is damaged (each damaged file is also counted and logged).
func (s *Store) Verify(ctx context.Context) ([]TableCheck, error) {
	db, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	levels, err := db.SSTables()
	if err != nil {
		return nil, fmt.Errorf("list sstables: %w", err)
	}
	var out []TableCheck
	bad := 0
	for level, tables := range levels {
		for _, t := range tables {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			c := TableCheck{File: fmt.Sprintf("%s.sst", t.FileNum), Level: level, Size: t.Size,
				Tables: spanTables(t.Smallest.UserKey, t.Largest.UserKey)}
			c.Err = s.checkTable(c.File)
			if c.Err != nil {
				bad++
				s.integrity.corruption.WithLabelValues("verify").Inc()
				s.log.Error("store corruption: sstable damaged", "file", c.File, "level", level, "tables", c.Tables, "err", c.Err.Error())
			}
			out = append(out, c)
		}
	}
	if bad > 0 {
		return out, fmt.Errorf("%w: %d of %d sstables damaged", storage.ErrCorrupt, bad, len(out))
	}
	return out, nil
}

// checkTable validates the block checksums of one sstable file.
func (s *Store) checkTable(name string) error {
	f, err := s.fs.Open(s.fs.PathJoin(s.dir, name))
	if err != nil {
		return err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return err
	}
	r, err := sstable.NewReader(readable, sstable.ReaderOptions{Comparer: s.comparer, MergerName: s.merger.Name,
		Filters: map[string]pebble.FilterPolicy{bloomPolicy.Name(): bloomPolicy}})
	if err != nil {
		readable.Close()
		return err
	}
	defer r.Close()
	return r.ValidateBlockChecksums()
}

// spanTables names the rowkey tables between two keys, e.g. "b..r".
func spanTables(lo, hi []byte) string {
	if len(lo) == 0 || len(hi) == 0 {
		return ""
	}
	a, b := rowkey.Table(lo[0]), rowkey.Table(hi[0])
	if a == b {
		return string(rune(a))
	}
	return string(rune(a)) + ".." + string(rune(b))
}
