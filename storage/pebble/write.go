package pebble

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Write implements storage.Writer. It fails with ErrDiskFull when free
// space is below Config.MinFreeBytes, and with an error wrapping ErrFailed
// when Pebble could not write its log; in both cases nothing of the batch
// is applied.
//
// The whole batch, with its dedupe marker, the sensor's sequence and the
// store's counters, is one synced Pebble batch: it applies entirely or
// not at all.
func (s *Store) Write(ctx context.Context, b *storage.Batch) (applied bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := s.layout.Plan(b)
	if err != nil {
		return false, err
	}
	start := time.Now()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	db, err := s.acquire()
	if err != nil {
		return false, err
	}
	defer s.release()
	defer func() {
		if err != nil {
			err = s.readErr(err, fmt.Sprintf("rows batch %s/%d updates", b.SensorID, b.Seq))
			s.m.WriteErrors.Inc()
		}
	}()
	if _, seen, err := s.get(db, p.DedupeKey); err != nil {
		return false, fmt.Errorf("read dedupe marker: %w", s.readErr(err, "dedupe marker of "+b.SensorID))
	} else if seen {
		s.m.Deduplicated.Inc()
		return false, nil
	}
	if err := s.checkFree(b); err != nil {
		return false, err
	}
	return s.apply(db, b, p, start)
}

// checkFree refuses a batch (ErrDiskFull) when the disk would keep less
// than Config.MinFreeBytes free after it, counting its blocks twice (the
// log, then the tables).
func (s *Store) checkFree(b *storage.Batch) error {
	if s.cfg.MinFreeBytes <= 0 {
		return nil
	}
	var encBytes int64
	for i := range b.Blocks {
		encBytes += int64(len(b.Blocks[i].Encoded))
	}
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return fmt.Errorf("disk usage: %w", err)
	}
	if int64(du.AvailBytes) < s.cfg.MinFreeBytes+2*encBytes {
		return fmt.Errorf("%w: %d bytes free, need %d + %d", ErrDiskFull, du.AvailBytes, s.cfg.MinFreeBytes, 2*encBytes)
	}
	return nil
}

// apply writes the planned batch in one synced Pebble batch, then
// publishes the store's new data size and longest span. The caller holds
// writeMu.
func (s *Store) apply(db *pebble.DB, b *storage.Batch, p *plan.Batch, start time.Time) (bool, error) {
	wb := &s.rows
	defer wb.reset()
	dataBytes, err := s.batchBlocks(db, wb, p, s.dataBytes)
	if err != nil {
		return false, err
	}
	records, err := s.batchRecords(db, wb, p)
	if err != nil {
		return false, err
	}
	if err := s.batchRefs(db, wb, p.Refs); err != nil {
		return false, err
	}
	maxSpan := max(s.maxSpan.Load(), p.MaxSpan)
	if err := s.batchCounters(db, wb, b, p, dataBytes, maxSpan); err != nil {
		return false, err
	}
	pb := db.NewBatch()
	defer pb.Close()
	if err := wb.applyTo(pb); err != nil {
		return false, fmt.Errorf("batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	if err := s.commit(pb); err != nil {
		return false, fmt.Errorf("commit batch %s/%d: %w", b.SensorID, b.Seq, err)
	}
	s.dataBytes = dataBytes
	// Publish the span before any reader could look for the new blocks
	// it covers: they became visible at commit, and a reader using the
	// older, smaller span could only miss blocks of this very batch.
	s.maxSpan.Store(maxSpan)
	s.m.Wrote(int64(len(p.Blocks)), p.Bytes, records, start)
	s.m.DataBytes.Set(float64(dataBytes))
	return true, nil
}

// batchBlocks adds the batch's block rows and their retention index rows
// to wb and returns the data size after them.
func (s *Store) batchBlocks(db *pebble.DB, wb rowWriter, p *plan.Batch, dataBytes int64) (int64, error) {
	var vbuf []byte
	for i := range p.Blocks {
		row := &p.Blocks[i]
		replaced, err := s.unindexStored(db, wb, row.Key)
		if err != nil {
			return 0, err
		}
		dataBytes -= replaced
		vbuf = row.AppendValue(vbuf[:0])
		if err := wb.Set(row.Key, vbuf, nil); err != nil {
			return 0, fmt.Errorf("batch block: %w", err)
		}
		if err := wb.Set(row.AgeKey(), row.AgeValue(), nil); err != nil {
			return 0, fmt.Errorf("batch age: %w", err)
		}
		dataBytes += row.Size()
	}
	return dataBytes, nil
}

// unindexStored handles a block resent in a later batch, which replaces
// the stored one: it removes the stored block's retention index row in wb
// and returns its size, so the byte count and the age index stay exact
// (0 when the block row at key is new).
func (s *Store) unindexStored(db *pebble.DB, wb rowWriter, key []byte) (int64, error) {
	old, ok, err := s.getForWrite(db, key)
	if err != nil {
		return 0, fmt.Errorf("read block: %w", err)
	}
	if !ok {
		return 0, nil
	}
	var ob storage.Block
	if err := rowkey.DecodeBlock(key[1:], old, &ob); err != nil {
		return 0, fmt.Errorf("decode stored block: %w", err)
	}
	if err := wb.Delete(plan.AgeKey(ob.Meta.Last, key), nil); err != nil {
		return 0, err
	}
	return int64(len(ob.Encoded)), nil
}

// batchCounters adds to wb the batch's dedupe marker, the sensor's raised
// durable sequence, the data size and, when it grew, the longest span.
func (s *Store) batchCounters(db *pebble.DB, wb rowWriter, b *storage.Batch, p *plan.Batch, dataBytes, maxSpan int64) error {
	if err := wb.Set(p.DedupeKey, nil, nil); err != nil {
		return err
	}
	var cur int64
	if err := s.getInt(db, p.SeqKey, &cur); err != nil {
		return fmt.Errorf("read seq: %w", err)
	}
	if b.Seq > uint64(cur) {
		if err := wb.Set(p.SeqKey, rowkey.AppendUint64(nil, b.Seq), nil); err != nil {
			return err
		}
	}
	if err := wb.Set(rowkey.TableKey(rowkey.TableMeta, metaDataBytes), rowkey.AppendUint64(nil, uint64(dataBytes)), nil); err != nil {
		return err
	}
	if maxSpan != s.maxSpan.Load() {
		if err := wb.Set(rowkey.TableKey(rowkey.TableMeta, metaMaxSpan), rowkey.AppendUint64(nil, uint64(maxSpan)), nil); err != nil {
			return err
		}
	}
	return nil
}

// batchRecords writes the newest segment of each record of the batch,
// unless the store already holds a newer one, moving its long-flow row
// with it, and adds the flow refs of those it writes to p.Refs. It
// returns how many it writes.
func (s *Store) batchRecords(db *pebble.DB, wb rowWriter, p *plan.Batch) (int64, error) {
	keys := make([][]byte, len(p.Records))
	for i, r := range p.Records {
		keys[i] = s.layout.RecordKey(r)
	}
	olds, err := s.storedRecords(db, keys)
	if err != nil {
		return 0, err
	}
	var n int64
	for i, r := range p.Records {
		stored, err := s.batchRecord(wb, r, keys[i], olds[i])
		if err != nil {
			_ = s.index.builder.Flush(func(_, _ []byte) error { return nil }) // drop the batch's postings
			return 0, err
		}
		if stored {
			n++
			p.Refs.Add(plan.RecordRef(r))
		}
	}
	if err := s.writePostings(wb); err != nil {
		return 0, fmt.Errorf("index records: %w", err)
	}
	return n, nil
}

// storedRecords returns the stored value of each record row key (nil:
// none). It reads them with one iterator, seeking the keys in order: a
// batch's records start close together in time, so each seek starts
// where the last one ended (a Get per record searched the memtables and
// every level from the top each time, about a fifth of ingest's CPU in a
// store of a million records). With the prefix comparer each seek is a
// prefix seek, which the sstables' bloom filters answer.
func (s *Store) storedRecords(db *pebble.DB, keys [][]byte) ([][]byte, error) {
	olds := make([][]byte, len(keys))
	if len(keys) == 0 {
		return olds, nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{byte(rowkey.TableRecords)},
		UpperBound: []byte{byte(rowkey.TableRecords) + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer it.Close()
	seek := it.SeekGE
	if s.prefixSeek {
		seek = it.SeekPrefixGE
	}
	s.writeReads.Add(uint64(len(keys)))
	for _, i := range order {
		if seek(keys[i]) && bytes.Equal(it.Key(), keys[i]) {
			olds[i] = slices.Clone(it.Value())
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return olds, nil
}

// batchRecord writes r (row key rk) unless old, the stored record (nil:
// none), is a newer segment of its flow, and reports whether it does.
// The stored record is read, not left to a merge operator: a merge
// operand made every later read of the row look for older operands in
// every level, and searches, which read records, took two to four times
// as long.
func (s *Store) batchRecord(wb rowWriter, r *flow.Record, rk, old []byte) (bool, error) {
	if old != nil {
		var or flow.Record
		if err := plan.DecodeRecord(old, &or); err != nil {
			return false, fmt.Errorf("decode stored record: %w", err)
		}
		if plan.Supersedes(&or, r) {
			return false, nil // a newer report is stored already
		}
		if s.layout.IsLong(&or) {
			if err := wb.Delete(s.layout.LongKey(&or), nil); err != nil {
				return false, err
			}
		}
	}
	v, err := plan.EncodeRecord(nil, r)
	if err != nil {
		return false, err
	}
	if err := wb.Set(rk, v, nil); err != nil {
		return false, err
	}
	s.addPostings(r, rk)
	if s.layout.IsLong(r) {
		if err := wb.Set(s.layout.LongKey(r), v, nil); err != nil {
			return false, err
		}
	}
	return true, nil
}

// batchRefs merges the batch's flow refs into the flow ID and Community
// ID indexes: as merge operands into the flow ID rows and key-only
// Community ID rows (refMerger), or on a store created before it by
// reading, merging and rewriting both rows.
func (s *Store) batchRefs(db *pebble.DB, wb rowWriter, refs plan.Refs) error {
	if s.merges {
		var v []byte
		for id, r := range refs {
			v = rowkey.AppendRef(v[:0], r)
			if err := wb.Merge(s.flowIDKey(id), v, nil); err != nil {
				return err
			}
			// The Community ID row only points at the flow ID row: a
			// copy of the ref there was a third of what compactions
			// rewrote (its keys are random).
			if ck, ok := s.communityKey(r.CommunityID, id); ok {
				if err := wb.Set(ck, nil, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for id, r := range refs {
		fk := s.flowIDKey(id)
		old, ok, err := s.getForWrite(db, fk)
		if err != nil {
			return fmt.Errorf("read flow ref: %w", err)
		}
		if ok {
			var or storage.FlowRef
			if err := rowkey.DecodeRef(old, &or); err != nil {
				return fmt.Errorf("decode flow ref: %w", err)
			}
			or.Merge(r)
			r = &or
		}
		v := rowkey.AppendRef(nil, r)
		if err := wb.Set(fk, v, nil); err != nil {
			return err
		}
		if ck, ok := plan.CommunityKey(r.CommunityID, id); ok {
			if err := wb.Set(ck, v, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// getForWrite is get for a row a write reads before writing it, counted
// (tapir_pebble_write_point_reads_total).
func (s *Store) getForWrite(db *pebble.DB, key []byte) ([]byte, bool, error) {
	s.writeReads.Add(1)
	return s.get(db, key)
}
