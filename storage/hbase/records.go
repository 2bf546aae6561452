package hbase

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/plan"
)

// qualifierSegment holds flow records of flows no longer than LongFlow,
// written with a plain put at timestamp tsBase + Segment: HBase keeps the
// cell with the highest timestamp, so the newest segment wins whatever
// order reports arrive in, and no read or check-and-put is needed. Such
// a record has no long-flow row to move: a flow's segments share its
// start and end no earlier than the ones before them, so every segment
// newer than a long one is long too, and long records keep the
// check-and-put merge of "v" (mergeRecord). A reader takes, of "v" and
// "s", the record with the higher segment.
const qualifierSegment = "s"

// shortRecordPut returns the put of a record that is not long.
func (s *Store) shortRecordPut(r *flow.Record) (cellPut, error) {
	v, err := plan.EncodeRecord(nil, r)
	if err != nil {
		return cellPut{}, err
	}
	return cellPut{key: s.layout.RecordKey(r), family: familyIndex, ts: tsBase + uint64(r.Segment),
		cells: map[string][]byte{qualifierSegment: v}}, nil
}

// recordFromCells decodes the newest segment among a record row's cells;
// ok is false when the row holds none.
func recordFromCells(cells []*hrpc.Cell, r *flow.Record) (ok bool, err error) {
	for _, c := range cells {
		if q := string(c.Qualifier); q != qualifier && q != qualifierSegment {
			continue
		}
		var cand flow.Record
		if err := plan.DecodeRecord(c.Value, &cand); err != nil {
			return false, fmt.Errorf("decode record: %w", err)
		}
		if !ok || cand.Segment > r.Segment {
			*r = cand
			ok = true
		}
	}
	return ok, nil
}

// mergeRecord stores r unless its flow's record row holds a newer segment
// (the rule of every backend: a report replaces the stored one unless
// that one has a higher Segment), and moves the long-flow row with it. It
// reports whether r was stored.
//
// Several writers may store reports of one flow at once (two collectors
// sharing the table, a sensor failing over, a retry racing the attempt it
// replaces), so the record row is replaced with a check-and-put against
// the value the decision was made on, reading and deciding again when
// another writer got there first: an older segment can never overwrite a
// newer one. The long-flow rows follow the record row: only the writer
// that replaced a record moves its long row (puts its own with the same
// newest-segment rule, deletes the replaced one's), and a writer that
// finds its record replaced after putting its long row deletes that row
// unless the newer record uses it, so no row of an older segment stays
// behind (segments end no earlier than the ones before them, so a newer
// record's long row is never one an older writer deletes).
func (s *Store) mergeRecord(ctx context.Context, r *flow.Record) (bool, error) {
	v, err := plan.EncodeRecord(nil, r)
	if err != nil {
		return false, err
	}
	key := s.layout.RecordKey(r)
	old, stored, err := s.casRecord(ctx, key, r, v)
	if err != nil || !stored {
		return false, err
	}
	if err := s.moveLongRow(ctx, key, r, old, v); err != nil {
		return false, err
	}
	return true, nil
}

// casRecord replaces the record row at key with v (the encoded r) unless
// it holds a newer segment, with a check-and-put loop. It returns the
// record it replaced (nil: none) and whether r is stored.
func (s *Store) casRecord(ctx context.Context, key []byte, r *flow.Record, v []byte) (*flow.Record, bool, error) {
	// First guess: the value this store last saw there, or none (a new
	// flow's first report); a wrong guess costs a failed check-and-put.
	cur, ok := s.seen.get(key)
	for guessed := true; ; guessed = false {
		if !guessed {
			var err error
			if cur, ok, err = s.get(ctx, key, familyIndex); err != nil {
				return nil, false, fmt.Errorf("read record: %w", err)
			}
			if ok {
				s.seen.set(key, cur)
			}
		}
		var old *flow.Record
		if ok {
			old = new(flow.Record)
			if err := plan.DecodeRecord(cur, old); err != nil {
				return nil, false, fmt.Errorf("decode stored record: %w", err)
			}
			if plan.Supersedes(old, r) {
				return nil, false, nil // a newer report is stored already
			}
			if bytes.Equal(cur, v) {
				return old, true, nil // stored already (a retry): make sure of its long row
			}
		} else {
			cur = nil
		}
		done, err := s.checkAndPut(ctx, key, familyIndex, v, cur)
		if err != nil {
			return nil, false, fmt.Errorf("write record: %w", err)
		}
		if done {
			s.seen.set(key, v)
			return old, true, nil
		}
	}
}

// moveLongRow makes the long-flow rows follow the record row at key, now
// r (encoded v), which replaced old (nil: none): it puts r's long row
// when r is long, deletes old's when it is another row, and deletes r's
// again when a newer report replaced r meanwhile.
func (s *Store) moveLongRow(ctx context.Context, key []byte, r, old *flow.Record, v []byte) error {
	long := s.layout.IsLong(r)
	var lkey []byte
	if long {
		lkey = s.layout.LongKey(r)
		if err := s.mergeLongRow(ctx, lkey, r, v); err != nil {
			return fmt.Errorf("write long-flow row: %w", err)
		}
	}
	if old != nil && s.layout.IsLong(old) {
		if okey := s.layout.LongKey(old); !bytes.Equal(okey, lkey) {
			if err := s.del(ctx, okey); err != nil {
				return fmt.Errorf("delete old long-flow row: %w", err)
			}
		}
	}
	if !long {
		return nil
	}
	return s.dropSuperseded(ctx, key, lkey, v)
}

// dropSuperseded deletes the long-flow row lkey of the record v when a
// newer report replaced it at key (and may have deleted lkey before it
// was put), unless the newer record uses that row too.
func (s *Store) dropSuperseded(ctx context.Context, key, lkey, v []byte) error {
	cur, ok, err := s.get(ctx, key, familyIndex)
	if err != nil {
		return fmt.Errorf("read record: %w", err)
	}
	if !ok || bytes.Equal(cur, v) {
		return nil
	}
	var now flow.Record
	if err := plan.DecodeRecord(cur, &now); err != nil {
		return fmt.Errorf("decode stored record: %w", err)
	}
	if s.layout.IsLong(&now) && bytes.Equal(s.layout.LongKey(&now), lkey) {
		return nil
	}
	if err := s.del(ctx, lkey); err != nil {
		return fmt.Errorf("delete superseded long-flow row: %w", err)
	}
	return nil
}

// mergeLongRow writes v (the encoded r) at the long-flow row key unless it
// holds a newer segment, with a check-and-put loop like mergeRecord's.
func (s *Store) mergeLongRow(ctx context.Context, key []byte, r *flow.Record, v []byte) error {
	for {
		cur, ok, err := s.get(ctx, key, familyIndex)
		if err != nil {
			return err
		}
		if ok {
			if bytes.Equal(cur, v) {
				return nil
			}
			var old flow.Record
			if err := plan.DecodeRecord(cur, &old); err != nil {
				return fmt.Errorf("decode stored record: %w", err)
			}
			if plan.Supersedes(&old, r) {
				return nil
			}
		} else {
			cur = nil
		}
		done, err := s.checkAndPut(ctx, key, familyIndex, v, cur)
		if err != nil || done {
			return err
		}
	}
}
