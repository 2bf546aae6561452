package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
)

// handleFlows streams the flow records matching a query as ECS JSON lines
// (application/x-ndjson), in start-time order, at most limit of them. The
// trailer X-Tapir-More is true when more records matched.
func (s *Server) handleFlows(c *call) {
	v := c.r.URL.Query()
	expr := v.Get("query")
	c.audit.setParams("", expr, s.cfg.Audit.MaxParamBytes)
	limit := s.cfg.FlowsLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			s.fail(c, http.StatusBadRequest, "bad_request", "limit must be a positive integer", nil)
			return
		}
		limit = min(n, s.cfg.FlowsMaxLimit)
	}
	if expr == "" {
		// Everything in the default window.
		expr = "after " + strconv.FormatInt(int64(s.cfg.Query.DefaultWindow.Seconds()), 10) + "s ago"
	}
	q, ok := s.parseQuery(c, expr)
	if !ok {
		return
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", "X-Tapir-More, X-Tapir-Complete")
	bw := bufio.NewWriterSize(c.w, 64<<10)
	n, more := 0, false
	err := s.deps.Store.ScanRecords(c.ctx, q.From, q.To, func(r *flow.Record) error {
		if !q.Match(r) {
			return nil
		}
		if n == limit {
			more = true
			return errStop
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode record: %w", err)
		}
		n++
		if _, err := bw.Write(b); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if err != nil && !c.w.started && bw.Buffered() == 0 {
		s.storeError(c, err)
		return
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	c.audit.Flows = n
	if err != nil {
		c.audit.Error = err.Error()
		s.log.Warn("flows stream ended early", "err", err, "subject", c.audit.Subject)
	}
	if !c.w.started {
		c.w.WriteHeader(http.StatusOK)
	}
	h.Set("X-Tapir-More", strconv.FormatBool(more))
	h.Set("X-Tapir-Complete", strconv.FormatBool(err == nil))
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
