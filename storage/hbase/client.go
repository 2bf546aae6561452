package hbase

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// The calls of a Store to HBase: each takes a slot among the calls in
// flight (Config.Concurrency for the whole store).

// slot takes a place among the calls in flight.
func (s *Store) slot(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unslot() { <-s.sem }

// get returns the value of the row's one cell in family.
func (s *Store) get(ctx context.Context, key []byte, family string) ([]byte, bool, error) {
	if err := s.slot(ctx); err != nil {
		return nil, false, err
	}
	defer s.unslot()
	g, err := hrpc.NewGet(ctx, s.table, key, hrpc.Families(map[string][]string{family: {qualifier}}))
	if err != nil {
		return nil, false, err
	}
	r, err := s.client.Get(g)
	if err != nil {
		return nil, false, err
	}
	for _, c := range r.Cells {
		return c.Value, true, nil
	}
	return nil, false, nil
}

// getRow returns every cell of the row in family.
func (s *Store) getRow(ctx context.Context, key []byte, family string) ([]*hrpc.Cell, error) {
	if err := s.slot(ctx); err != nil {
		return nil, err
	}
	defer s.unslot()
	g, err := hrpc.NewGet(ctx, s.table, key, hrpc.Families(map[string][]string{family: nil}))
	if err != nil {
		return nil, err
	}
	r, err := s.client.Get(g)
	if err != nil {
		return nil, err
	}
	return r.Cells, nil
}

// put writes one cellPut.
func (s *Store) put(ctx context.Context, c *cellPut) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	var opts []func(hrpc.Call) error
	if c.ts != 0 {
		opts = append(opts, hrpc.TimestampUint64(c.ts))
	}
	p, err := hrpc.NewPut(ctx, s.table, c.key, map[string]map[string][]byte{c.family: c.cells}, opts...)
	if err != nil {
		return err
	}
	if _, err = s.client.Put(p); err != nil {
		return err
	}
	if c.mark != nil {
		s.refPut.add(c.key, c.mark)
	}
	return nil
}

func (s *Store) del(ctx context.Context, key []byte) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	d, err := hrpc.NewDel(ctx, s.table, key, nil)
	if err != nil {
		return err
	}
	_, err = s.client.Delete(d)
	return err
}

// checkAndPut writes value when the cell currently holds expect (nil:
// when it is absent), and reports whether it did.
func (s *Store) checkAndPut(ctx context.Context, key []byte, family string, value, expect []byte) (bool, error) {
	if err := s.slot(ctx); err != nil {
		return false, err
	}
	defer s.unslot()
	p, err := hrpc.NewPut(ctx, s.table, key, map[string]map[string][]byte{family: {qualifier: value}})
	if err != nil {
		return false, err
	}
	return s.client.CheckAndPut(p, family, qualifier, expect)
}

// raise sets the 8-byte counter at key to v unless it holds a larger one
// already (compare-and-set loop). The value this store last saw at key
// is tried first, without reading.
func (s *Store) raise(ctx context.Context, key []byte, v uint64) error {
	cur, ok := s.seen.get(key)
	for {
		if !ok {
			var err error
			if cur, ok, err = s.get(ctx, key, familyIndex); err != nil {
				return err
			}
			if ok {
				s.seen.set(key, cur)
			}
		}
		var expect []byte
		if ok {
			c, err := rowkey.DecodeUint64(cur)
			if err != nil {
				return err
			}
			if c >= v {
				return nil
			}
			expect = cur
		}
		nv := rowkey.AppendUint64(nil, v)
		done, err := s.checkAndPut(ctx, key, familyIndex, nv, expect)
		if err != nil {
			return err
		}
		if done {
			s.seen.set(key, nv)
			return nil
		}
		ok = false
	}
}

func (s *Store) readMaxSpan(ctx context.Context) (int64, error) {
	v, ok, err := s.get(ctx, rowkey.TableKey(rowkey.TableMeta, metaMaxSpan), familyIndex)
	if err != nil || !ok {
		return 0, err
	}
	u, err := rowkey.DecodeUint64(v)
	return int64(u), err
}

// parallel runs fn(i) for i in [0, n) on at most Config.Concurrency
// goroutines (the store-wide call bound applies on top) and returns every
// error joined.
func (s *Store) parallel(n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, s.cfg.Concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scan calls fn with the key and value of every row in [start, stop) of
// family, in key order. fn's slices are valid during the call only.
func (s *Store) scan(ctx context.Context, start, stop []byte, family string, fn func(key, value []byte) error) error {
	return s.scanFamily(ctx, start, stop, map[string][]string{family: {qualifier}}, func(cells []*hrpc.Cell) error {
		for _, c := range cells {
			return fn(c.Row, c.Value)
		}
		return nil
	})
}

// scanRows calls fn with every cell of family of each row in [start,
// stop), in key order.
func (s *Store) scanRows(ctx context.Context, start, stop []byte, family string, fn func(cells []*hrpc.Cell) error) error {
	return s.scanFamily(ctx, start, stop, map[string][]string{family: nil}, fn)
}

func (s *Store) scanFamily(ctx context.Context, start, stop []byte, families map[string][]string, fn func(cells []*hrpc.Cell) error) error {
	if err := s.slot(ctx); err != nil {
		return err
	}
	defer s.unslot()
	sc, err := hrpc.NewScanRange(ctx, s.table, start, stop, hrpc.Families(families))
	if err != nil {
		return err
	}
	scanner := s.client.Scan(sc)
	defer scanner.Close()
	for {
		r, err := scanner.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(r.Cells); err != nil {
			return err
		}
	}
}
