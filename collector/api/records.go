package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/tapir-sensor/tapir/collector/query"
)

// RecordSearcher is a search engine holding the flows' latest records as
// ECS JSON documents (OpenSearch, fed by the collector's indexer).
type RecordSearcher interface {
	// SearchFlows returns up to limit documents matching q, by start
	// time then flow ID, after cursor (empty: from the first); next is
	// the following page's cursor, empty at the end. An error with a
	// BadQuery() true method is the query's fault (answered 400).
	SearchFlows(ctx context.Context, q *query.Query, cursor string, limit int) (docs []json.RawMessage, next string, err error)
}

// flowsFromRecords answers GET /api/v1/flows from Dependencies.Records
// (search.backend: opensearch): sorted by start time only.
func (s *Server) flowsFromRecords(c *call, q *query.Query, sp sortSpec, limit int) {
	if sortName(sp) != "start" {
		s.fail(c, http.StatusBadRequest, "bad_request", "sort "+strconv.Quote(sortName(sp))+": the opensearch search backend sorts by start only", nil)
		return
	}
	docs, next, err := s.deps.Records.SearchFlows(c.ctx, q, c.r.URL.Query().Get("cursor"), limit)
	var bq interface{ BadQuery() bool }
	if errors.As(err, &bq) && bq.BadQuery() {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	if err != nil {
		s.log.Warn("opensearch search failed", "err", err)
		s.fail(c, http.StatusBadGateway, "search_backend", "the opensearch search backend failed: "+err.Error(), nil)
		return
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set(headerWindow, windowHeader(q))
	h.Set(headerSearch, BackendOpenSearch)
	h.Set("X-Tapir-More", strconv.FormatBool(next != ""))
	if next != "" {
		h.Set(headerNext, next)
	}
	c.w.WriteHeader(http.StatusOK)
	for _, d := range docs {
		if _, err := c.w.Write(append(d, '\n')); err != nil {
			c.audit.Error = err.Error()
			return
		}
		c.audit.Flows++
	}
}
