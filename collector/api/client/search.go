package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// FlowsRequest is one page of a flow search.
type FlowsRequest struct {
	Query  string
	Limit  int    // 0: the server's default
	Sort   string // "", "start", "-bytes", ...
	Cursor string // the Next of the previous page
}

// FlowsPage is what a page of a flow search reports besides its records.
type FlowsPage struct {
	// Next is the cursor of the next page ("" when nothing more matched
	// or the server does not page).
	Next string
	// More: more records matched than the page holds.
	More bool
	// Window is the window the server searched (FROM/TO, RFC 3339), ""
	// from a server that does not say.
	Window string
}

// FlowsPage calls fn with the page's flow records (ECS JSON documents).
func (c *Client) FlowsPage(ctx context.Context, r FlowsRequest, fn func(json.RawMessage) error) (FlowsPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"query": r.Query, "sort": r.Sort, "cursor": r.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	resp, err := c.get(ctx, "/api/v1/flows", q)
	if err != nil {
		return FlowsPage{}, err
	}
	defer resp.Body.Close()
	page := FlowsPage{Window: resp.Header.Get("X-Tapir-Window"), Next: resp.Header.Get("X-Tapir-Next")}
	if err := readFlows(resp, fn); err != nil {
		return page, err
	}
	page.More = resp.Trailer.Get("X-Tapir-More") == "true"
	if n := resp.Trailer.Get("X-Tapir-Next"); n != "" {
		page.Next = n
	}
	return page, nil
}

// TopRow is one value of a top N answer.
type TopRow struct {
	Value   string `json:"value"`
	Flows   uint64 `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Top is the answer of GET /api/v1/flows/top.
type Top struct {
	By    string   `json:"by"`
	Order string   `json:"order"`
	Rows  []TopRow `json:"rows"`
	Other TopRow   `json:"other"`
}

// Top asks the server for the n values of field with the most flows
// (order "flows"), bytes or packets among the flows matching query.
func (c *Client) Top(ctx context.Context, query, field, order string, n int) (*Top, error) {
	q := url.Values{"by": {field}, "n": {strconv.Itoa(n)}, "order": {order}}
	if query != "" {
		q.Set("query", query)
	}
	var out Top
	return &out, c.getJSON(ctx, "/api/v1/flows/top", q, &out)
}

// Histogram is the answer of GET /api/v1/flows/histogram.
type Histogram struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	BucketSeconds int64     `json:"bucket_seconds"`
	Counts        []uint64  `json:"counts"`
	Bytes         []uint64  `json:"bytes"`
}

// Histogram counts the flows matching query by start time in about
// buckets buckets.
func (c *Client) Histogram(ctx context.Context, query string, buckets int) (*Histogram, error) {
	q := url.Values{"buckets": {strconv.Itoa(buckets)}}
	if query != "" {
		q.Set("query", query)
	}
	var out Histogram
	return &out, c.getJSON(ctx, "/api/v1/flows/histogram", q, &out)
}

// getJSON decodes the JSON answer of a GET.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// Field is one searchable field of GET /api/v1/fields.
type Field struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Description string   `json:"description"`
	Indexed     bool     `json:"indexed"`
	Aliases     []string `json:"aliases"`
}

// Fields lists the fields the collector's query language searches.
func (c *Client) Fields(ctx context.Context) ([]Field, error) {
	var out []Field
	return out, c.getJSON(ctx, "/api/v1/fields", nil, &out)
}
