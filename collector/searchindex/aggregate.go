package searchindex

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// Histogram counts the flows matching q by start time in len(counts)
// buckets of width from q.From (flows that started before it count in the
// first bucket, after the last bucket in the last), summing their bytes
// in bytes. It adds to counts and bytes.
func (s *Searcher) Histogram(ctx context.Context, q *query.Query, width time.Duration, counts []int64, bytes []uint64) error {
	dsl, err := Translate(q)
	if err != nil {
		return badQuery{err}
	}
	w := width.Milliseconds()
	if w <= 0 || len(counts) == 0 || len(bytes) != len(counts) {
		return fmt.Errorf("searchindex: histogram of %d buckets of %v", len(counts), width)
	}
	from := q.From.UnixMilli()
	body := obj{"size": 0, "query": dsl, "aggs": obj{"h": obj{
		"histogram": obj{"field": "event.start", "interval": w, "offset": ((from % w) + w) % w, "min_doc_count": 1},
		"aggs":      obj{"bytes": obj{"sum": obj{"field": "network.bytes"}}}}}}
	var resp struct {
		Buckets []struct {
			Key   float64 `json:"key"`
			Count int64   `json:"doc_count"`
			Bytes struct {
				Value float64 `json:"value"`
			} `json:"bytes"`
		} `json:"buckets"`
	}
	if err := s.aggregate(ctx, body, "h", &resp); err != nil {
		return err
	}
	for _, b := range resp.Buckets {
		i := int((int64(b.Key) - from) / w)
		if int64(b.Key) < from {
			i = 0
		}
		i = min(max(i, 0), len(counts)-1)
		counts[i] += b.Count
		bytes[i] += uint64(b.Bytes.Value)
	}
	return nil
}

// Top calls add for every value of field f among the flows matching q,
// with the number of flows that have it and their packets and bytes (a
// composite aggregation, paged to the end: exact, not the terms
// aggregation's per-shard estimate).
func (s *Searcher) Top(ctx context.Context, q *query.Query, f *flowindex.Field, add func(value string, flows int64, packets, bytes uint64) error) error {
	dsl, err := Translate(q)
	if err != nil {
		return badQuery{err}
	}
	if strings.HasPrefix(f.Name, "threat.") || f.Kind == flowindex.KindDate {
		return badQuery{fmt.Errorf("top by %s: %w", f.Name, ErrUntranslatable)}
	}
	var after any
	for {
		comp := obj{"size": 1000, "sources": []any{obj{"v": obj{"terms": obj{"field": f.Name}}}}}
		if after != nil {
			comp["after"] = after
		}
		body := obj{"size": 0, "query": dsl, "aggs": obj{"t": obj{"composite": comp, "aggs": obj{
			"packets": obj{"sum": obj{"field": "network.packets"}}, "bytes": obj{"sum": obj{"field": "network.bytes"}}}}}}
		var resp struct {
			AfterKey map[string]any `json:"after_key"`
			Buckets  []struct {
				Key struct {
					V any `json:"v"`
				} `json:"key"`
				Count   int64                   `json:"doc_count"`
				Packets struct{ Value float64 } `json:"packets"`
				Bytes   struct{ Value float64 } `json:"bytes"`
			} `json:"buckets"`
		}
		if err := s.aggregate(ctx, body, "t", &resp); err != nil {
			return err
		}
		for _, b := range resp.Buckets {
			if b.Key.V == "" {
				continue // an empty text is no value for tapir (see exists)
			}
			if err := add(formatKey(f, b.Key.V), b.Count, uint64(b.Packets.Value), uint64(b.Bytes.Value)); err != nil {
				return err
			}
		}
		if len(resp.Buckets) == 0 || resp.AfterKey == nil {
			return nil
		}
		after = resp.AfterKey
	}
}

// formatKey renders an aggregation key as the field's Format renders its
// values.
func formatKey(f *flowindex.Field, k any) string {
	var v flowindex.Value
	switch x := k.(type) {
	case string:
		if f.Kind == flowindex.KindIP {
			v.A, _ = netip.ParseAddr(x)
		}
		if f.Kind == flowindex.KindBool {
			v.N = map[bool]int64{true: 1}[x == "true"]
		}
		v.S = x
	case float64:
		v.N = int64(x)
	case bool:
		v.N = map[bool]int64{true: 1}[x]
	}
	return f.Format(v)
}

// aggregate runs a search whose aggregation name is decoded into out.
func (s *Searcher) aggregate(ctx context.Context, body map[string]any, name string, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("searchindex: encode aggregation: %w", err)
	}
	allow := true
	resp, err := s.os.Search(ctx, &opensearchapi.SearchReq{Indices: []string{s.cfg.IndexPrefix + "*"}, Body: strings.NewReader(string(b)),
		Params: opensearchapi.SearchParams{AllowNoIndices: &allow}})
	if err != nil {
		return fmt.Errorf("searchindex: aggregation: %w", err)
	}
	var aggs map[string]json.RawMessage
	if len(resp.Aggregations) > 0 {
		if err := json.Unmarshal(resp.Aggregations, &aggs); err != nil {
			return fmt.Errorf("searchindex: decode aggregations: %w", err)
		}
	}
	raw, ok := aggs[name]
	if !ok {
		return nil // no index yet
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("searchindex: decode aggregation %s: %w", name, err)
	}
	return nil
}
