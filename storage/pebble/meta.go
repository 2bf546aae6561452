package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Meta rows (TableMeta).
var (
	metaLayout    = []byte("layout")     // time bucket ns, long flow ns
	metaDataBytes = []byte("data_bytes") // sum of len(Encoded) of kept blocks
	metaMaxSpan   = []byte("max_span")   // largest Last-First of any block written
)

// loadMeta checks the store's layout (writing it into a new store) and
// loads its data size and longest block span.
func (s *Store) loadMeta() error {
	want := s.layout.Value()
	got, ok, err := s.get(s.db, rowkey.TableKey(rowkey.TableMeta, metaLayout))
	if err != nil {
		return fmt.Errorf("read layout: %w", err)
	}
	created := !ok
	if created {
		if err := s.db.Set(rowkey.TableKey(rowkey.TableMeta, metaLayout), want, pebble.Sync); err != nil {
			return fmt.Errorf("write layout: %w", err)
		}
	} else if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: created with time_bucket/long_flow %x, configured %x", ErrLayout, got, want)
	}
	for _, c := range []struct {
		key []byte
		dst *int64
	}{{metaDataBytes, &s.dataBytes}} {
		if err := s.getInt(s.db, rowkey.TableKey(rowkey.TableMeta, c.key), c.dst); err != nil {
			return err
		}
	}
	var span int64
	if err := s.getInt(s.db, rowkey.TableKey(rowkey.TableMeta, metaMaxSpan), &span); err != nil {
		return err
	}
	s.maxSpan.Store(span)
	return s.loadIndexMeta(created)
}

// flowIDKey returns the key of a flow's flow ID row in this store.
func (s *Store) flowIDKey(id flow.ID) []byte {
	if s.orderedFlowIDs {
		return plan.OrderedFlowIDKey(id)
	}
	return plan.FlowIDKey(id)
}

// communityKey returns the key of a flow's Community ID row in this
// store (short in a store with ordered flow IDs), and false when
// communityID is not a Community ID v1.
func (s *Store) communityKey(communityID string, id flow.ID) ([]byte, bool) {
	if s.orderedFlowIDs {
		return plan.CommunityHashKey(communityID, id)
	}
	return plan.CommunityKey(communityID, id)
}

// get returns a copy of the value at key.
func (s *Store) get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := slices.Clone(v)
	_ = c.Close()
	return out, true, nil
}

// getInt reads the 8-byte counter at key into dst (left alone when
// there is none).
func (s *Store) getInt(r pebble.Reader, key []byte, dst *int64) error {
	v, ok, err := s.get(r, key)
	if err != nil || !ok {
		return err
	}
	u, err := rowkey.DecodeUint64(v)
	if err != nil {
		return err
	}
	*dst = int64(u)
	return nil
}
