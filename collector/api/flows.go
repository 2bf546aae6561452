package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// orderedSearcher is a store whose index search passes, with each
// record, a floor on the start time of every record still to come
// (storage/pebble's Store).
type orderedSearcher interface {
	SearchRecordsOrdered(ctx context.Context, from, to time.Time, lookup flowindex.Lookup, fn func(r *flow.Record, floor int64) error) (bool, error)
}

// byStart reports whether the page is sorted by ascending start time,
// the order of the store's records.
func (p *page) byStart() bool { return p.sp.f.Name == "event.start" && !p.sp.desc }

// closed reports, for a page by ascending start time, whether no record
// starting at or after floor can enter it: it holds limit+1 rows (the
// last says "more") and the last of them started before floor.
func (p *page) closed(floor int64) bool {
	return len(p.rows) > p.limit && floor > p.rows[0].k
}

// errPageClosed stops an ordered search once no later record can enter
// the page.
var errPageClosed = errors.New("page full")

// searchPage fills pg with the records matching q. Paged by ascending
// start time (the default), an ordered index search stops once the page
// holds limit+1 rows and the floor passes its last row, so a broad query
// reads about a page of records rather than every match; other sorts
// read every match into the bounded page.
func (s *Server) searchPage(ctx context.Context, q *query.Query, pg *page) (string, error) {
	if ordered, ok := s.deps.Store.(orderedSearcher); ok && pg.byStart() {
		if l := q.IndexLookup(); l != nil {
			used, err := ordered.SearchRecordsOrdered(ctx, q.From, q.To, l, func(r *flow.Record, floor int64) error {
				if pg.closed(floor) {
					return errPageClosed
				}
				if q.Match(r) {
					pg.add(r)
				}
				return nil
			})
			if errors.Is(err, errPageClosed) {
				err = nil
			}
			if used || err != nil {
				return "index", err
			}
		}
	}
	return s.search(ctx, q, func(r *flow.Record) error {
		pg.add(r)
		return nil
	})
}

// handleFlows answers the flow records matching a query as ECS JSON lines
// (application/x-ndjson), at most limit of them, sorted by sort (start
// time by default; bytes, packets, duration, end or any numeric field,
// "-" for descending; ties by flow ID). When more matched, the header
// (and trailer) X-Tapir-Next holds the cursor of the next page (the
// cursor parameter) and the trailer X-Tapir-More is true. X-Tapir-Window
// says which window was searched, X-Tapir-Search whether the search index
// answered.
func (s *Server) handleFlows(c *call) {
	v := c.r.URL.Query()
	limit, err := intParam(c, "limit", s.cfg.FlowsLimit, s.cfg.FlowsMaxLimit)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", "limit must be a positive integer", nil)
		return
	}
	sp, err := parseSort(v.Get("sort"))
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	cur := v.Get("cursor")
	if s.onRecords() {
		cur = "" // the opensearch backend's own cursor
	}
	after, err := parseCursor(cur, sp)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	q, ok := s.searchQuery(c)
	if !ok {
		return
	}
	if s.onRecords() {
		s.flowsFromRecords(c, q, sp, limit)
		return
	}
	pg := &page{sp: sp, after: after, limit: limit}
	how, err := s.searchPage(c.ctx, q, pg)
	if err != nil {
		s.storeError(c, err)
		return
	}
	rows, next := pg.result()
	h := c.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set(headerWindow, windowHeader(q))
	h.Set(headerSearch, how)
	h.Set("Trailer", "X-Tapir-More, X-Tapir-Complete, "+headerNext)
	if next != nil {
		h.Set(headerNext, next.String())
	}
	n, err := s.writeRows(c, rows)
	c.audit.Flows = n
	if err != nil {
		c.audit.Error = err.Error()
		s.log.Warn("flows stream ended early", "err", err, "subject", c.audit.Subject)
	}
	if !c.w.started {
		c.w.WriteHeader(http.StatusOK)
	}
	h.Set("X-Tapir-More", strconv.FormatBool(next != nil))
	h.Set("X-Tapir-Complete", strconv.FormatBool(err == nil))
	if next != nil {
		h.Set(headerNext, next.String())
	}
}

// writeRows writes the rows as ECS JSON lines and returns how many it
// wrote.
func (s *Server) writeRows(c *call, rows []row) (int, error) {
	bw := bufio.NewWriterSize(c.w, 64<<10)
	var (
		b   []byte
		err error
	)
	for i := range rows {
		if b, err = rows[i].r.AppendJSON(b[:0]); err != nil {
			return i, fmt.Errorf("encode record: %w", err)
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return i, err
		}
	}
	if err := bw.Flush(); err != nil {
		return len(rows), errors.Join(errors.New("write response"), err)
	}
	return len(rows), nil
}

// handleSensors answers the registry's sensors as a JSON array.
func (s *Server) handleSensors(c *call) {
	list := []registry.SensorStatus{}
	if s.deps.Sensors != nil {
		list = append(list, s.deps.Sensors.Sensors()...)
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(c, list)
}
