package api

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
)

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
	after, err := parseCursor(v.Get("cursor"), sp)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	q, ok := s.searchQuery(c)
	if !ok {
		return
	}
	pg := &page{sp: sp, after: after, limit: limit}
	how, err := s.search(c.ctx, q, func(r *flow.Record) error {
		pg.add(r)
		return nil
	})
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
