package searchindex

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/tapir-sensor/tapir/collector/query"
)

// Searcher answers the console's flow searches from the OpenSearch
// indices the Indexer fills (api.search.backend: opensearch).
type Searcher struct {
	cfg Config
	os  *opensearchapi.Client
}

// NewSearcher builds a Searcher on cfg's nodes (URLs, credentials, CA,
// index prefix).
func NewSearcher(cfg Config) (*Searcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("opensearch config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Searcher{cfg: cfg, os: c}, nil
}

// maxPage caps a page: OpenSearch answers at most index.max_result_window
// (10000) hits per search.
const maxPage = 5000

// badQuery marks a translation error for the API (400, not 502).
type badQuery struct{ error }

// BadQuery reports that the query, not the engine, is at fault.
func (badQuery) BadQuery() bool { return true }

func (e badQuery) Unwrap() error { return e.error }

// SearchFlows returns up to limit flow documents (ECS JSON, the flow's
// latest record) matching q, by start time then flow ID, after the
// cursor of a previous page (empty: the first page). next is the cursor
// of the following page, empty when no more matched. An error wrapping
// ErrUntranslatable has a BadQuery method.
func (s *Searcher) SearchFlows(ctx context.Context, q *query.Query, cursor string, limit int) (docs []json.RawMessage, next string, err error) {
	limit = min(limit, maxPage)
	dsl, err := Translate(q)
	if err != nil {
		return nil, "", badQuery{err}
	}
	body := obj{"size": limit + 1, "query": dsl, "track_total_hits": false,
		"sort": []any{obj{"event.start": "asc"}, obj{"tapir.flow_id": "asc"}}}
	if cursor != "" {
		after, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", badQuery{err}
		}
		body["search_after"] = after
	}
	hits, err := s.search(ctx, body)
	if err != nil {
		return nil, "", err
	}
	for i, h := range hits {
		if i == limit {
			next = encodeCursor(hits[i-1].Sort)
			break
		}
		docs = append(docs, h.Source)
	}
	return docs, next, nil
}

// search runs one search request on the flow indices.
func (s *Searcher) search(ctx context.Context, body map[string]any) ([]opensearchapi.SearchHit, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("searchindex: encode search: %w", err)
	}
	allow := true
	resp, err := s.os.Search(ctx, &opensearchapi.SearchReq{Indices: []string{s.cfg.IndexPrefix + "*"}, Body: bytes.NewReader(b),
		Params: opensearchapi.SearchParams{AllowNoIndices: &allow}})
	if err != nil {
		return nil, fmt.Errorf("searchindex: search: %w", err)
	}
	if r := resp.Inspect().Response; r != nil && r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	return resp.Hits.Hits, nil
}

// errCursor: a cursor this backend did not write.
var errCursor = errors.New("cursor is malformed")

func encodeCursor(sort []any) string {
	b, _ := json.Marshal(sort)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) ([]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errCursor
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v []any
	if err := d.Decode(&v); err != nil || len(v) != 2 {
		return nil, errCursor
	}
	return v, nil
}
