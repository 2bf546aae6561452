package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// RecordSearcher is a search engine holding the flows' latest records as
// ECS JSON documents (OpenSearch, fed by the collector's indexer).
type RecordSearcher interface {
	// SearchFlows returns up to limit documents matching q, by start
	// time then flow ID, after cursor (empty: from the first); next is
	// the following page's cursor, empty at the end. An error with a
	// BadQuery() true method is the query's fault (answered 400).
	SearchFlows(ctx context.Context, q *query.Query, cursor string, limit int) (docs []json.RawMessage, next string, err error)
	// Histogram adds the flows matching q, by start time in buckets of
	// width from q.From (earlier starts in the first, later in the
	// last), to counts and their bytes to bytes.
	Histogram(ctx context.Context, q *query.Query, width time.Duration, counts []int64, bytes []uint64) error
	// Top calls add for each value of f among the flows matching q with
	// the flows that have it and their packets and bytes.
	Top(ctx context.Context, q *query.Query, f *flowindex.Field, add func(value string, flows int64, packets, bytes uint64) error) error
}

// flowsFromRecords answers GET /api/v1/flows from Dependencies.Records
// (search.backend: opensearch): sorted by start time only.
func (s *Server) flowsFromRecords(c *call, q *query.Query, sp sortSpec, limit int) {
	if sortName(sp) != "start" {
		s.fail(c, http.StatusBadRequest, "bad_request", "sort "+strconv.Quote(sortName(sp))+": the opensearch search backend sorts by start only", nil)
		return
	}
	docs, next, err := s.deps.Records.SearchFlows(c.ctx, q, c.r.URL.Query().Get("cursor"), limit)
	if !s.recordsOK(c, err) {
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

// recordsOK answers a RecordSearcher error (400 for the query's fault,
// else 502) and reports whether there was none.
func (s *Server) recordsOK(c *call, err error) bool {
	if err == nil {
		return true
	}
	var bq interface{ BadQuery() bool }
	if errors.As(err, &bq) && bq.BadQuery() {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return false
	}
	s.log.Warn("opensearch search failed", "err", err)
	s.fail(c, http.StatusBadGateway, "search_backend", "the opensearch search backend failed: "+err.Error(), nil)
	return false
}

// onRecords reports whether searches run on Dependencies.Records.
func (s *Server) onRecords() bool { return s.cfg.Search.Backend == BackendOpenSearch }
