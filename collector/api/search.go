package api

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// Search endpoints (issue 17): field help, histogram and top N. Sorting
// and paging of /api/v1/flows are here too (handleFlows uses them).

// registerSearch registers the search routes on the server's mux.
func (s *Server) registerSearch() {
	s.mux.Handle("GET /api/v1/flows/histogram", s.route("flows_histogram", RoleFlowsRead, true, s.handleHistogram))
	s.mux.Handle("GET /api/v1/flows/top", s.route("flows_top", RoleFlowsRead, true, s.handleTop))
	s.mux.Handle("GET /api/v1/fields", s.route("fields", RoleFlowsRead, false, s.handleFields))
}

// Search headers.
const (
	// headerWindow says which window was searched: FROM/TO in RFC 3339.
	headerWindow = "X-Tapir-Window"
	// headerNext carries the cursor of the next page.
	headerNext = "X-Tapir-Next"
	// headerSearch says how the store answered: "index" or "scan".
	headerSearch = "X-Tapir-Search"
)

// search calls fn for every record of q's window that matches q: through
// the store's search index when it keeps one and the query has an
// indexable part, else by scanning the window. It returns how it
// searched ("index" or "scan").
func (s *Server) search(ctx context.Context, q *query.Query, fn func(*flow.Record) error) (string, error) {
	match := func(r *flow.Record) error {
		if !q.Match(r) {
			return nil
		}
		return fn(r)
	}
	if sr, ok := s.deps.Store.(storage.Searcher); ok {
		if l := q.IndexLookup(); l != nil {
			used, err := sr.SearchRecords(ctx, q.From, q.To, l, match)
			if used || err != nil {
				return "index", err
			}
		}
	}
	return "scan", s.deps.Store.ScanRecords(ctx, q.From, q.To, match)
}

// windowHeader renders the searched window.
func windowHeader(q *query.Query) string {
	return q.From.UTC().Format(time.RFC3339Nano) + "/" + q.To.UTC().Format(time.RFC3339Nano)
}

// searchQuery reads the query parameter (the default window when empty)
// and parses it; false when it answered an error.
func (s *Server) searchQuery(c *call) (*query.Query, bool) {
	expr := c.r.URL.Query().Get("query")
	c.audit.setParams("", expr, s.cfg.Audit.MaxParamBytes)
	if strings.TrimSpace(expr) == "" {
		expr = "after " + strconv.FormatInt(int64(s.cfg.Query.DefaultWindow.Seconds()), 10) + "s ago"
	}
	return s.parseQuery(c, expr)
}

// intParam reads an optional positive integer parameter, capped at max.
func intParam(c *call, name string, def, max int) (int, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer", name)
	}
	return min(n, max), nil
}

// sortSpec is a parsed sort parameter: a numeric field, descending or
// not. Rows tie on the flow ID (in the same direction).
type sortSpec struct {
	name string // as written, without "-"
	f    *flowindex.Field
	desc bool
}

// sortAliases are the sort names of the contract; any numeric field of
// the registry sorts too.
var sortAliases = map[string]string{"start": "event.start", "end": "event.end", "bytes": "network.bytes",
	"packets": "network.packets", "duration": "event.duration"}

func parseSort(v string) (sortSpec, error) {
	if v == "" {
		v = "start"
	}
	sp := sortSpec{name: strings.TrimPrefix(v, "-"), desc: strings.HasPrefix(v, "-")}
	name := sp.name
	if a, ok := sortAliases[name]; ok {
		name = a
	}
	f, ok := flowindex.ByName(name)
	if !ok || f.Kind == flowindex.KindKeyword || f.Kind == flowindex.KindIP || f.Kind == flowindex.KindBool {
		return sp, fmt.Errorf("sort %q: want start, end, bytes, packets, duration or a numeric field, with - for descending", v)
	}
	sp.f = f
	return sp, nil
}

// key returns the record's sort value (its first value; 0 without one).
func (sp sortSpec) key(r *flow.Record) int64 {
	var buf [2]flowindex.Value
	if vs := sp.f.Values(r, buf[:0]); len(vs) > 0 {
		return vs[0].N
	}
	return 0
}

// row is one record of a sorted page.
type row struct {
	k  int64
	id flow.ID
	r  flow.Record
}

// cursor is the position after the last row of a page.
type cursor struct {
	sort string
	k    int64
	id   flow.ID
}

func (c cursor) String() string {
	s := c.sort + "|" + strconv.FormatInt(c.k, 10) + "|" + c.id.String()
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(s string, sp sortSpec) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(b), "|")
	if err != nil || len(parts) != 3 {
		return nil, errors.New("cursor is malformed")
	}
	c := &cursor{sort: parts[0]}
	if c.sort != sortName(sp) {
		return nil, fmt.Errorf("cursor is of sort %q, not %q", c.sort, sortName(sp))
	}
	if c.k, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return nil, errors.New("cursor is malformed")
	}
	raw, err := hex.DecodeString(parts[2])
	if err != nil || len(raw) != len(c.id) {
		return nil, errors.New("cursor is malformed")
	}
	copy(c.id[:], raw)
	return c, nil
}

func sortName(sp sortSpec) string {
	if sp.desc {
		return "-" + sp.name
	}
	return sp.name
}

// before reports whether a sorts before b.
func (sp sortSpec) before(ak int64, aid flow.ID, bk int64, bid flow.ID) bool {
	c := 0
	switch {
	case ak < bk:
		c = -1
	case ak > bk:
		c = 1
	default:
		c = bytes.Compare(aid[:], bid[:])
	}
	if sp.desc {
		return c > 0
	}
	return c < 0
}

// page keeps the first limit+1 rows after the cursor in sort order: a
// bounded heap whose top is the row sorting last.
type page struct {
	sp    sortSpec
	after *cursor
	limit int
	rows  []row
}

func (p *page) Len() int { return len(p.rows) }
func (p *page) Less(i, j int) bool {
	return p.sp.before(p.rows[j].k, p.rows[j].id, p.rows[i].k, p.rows[i].id)
}
func (p *page) Swap(i, j int) { p.rows[i], p.rows[j] = p.rows[j], p.rows[i] }
func (p *page) Push(x any)    { p.rows = append(p.rows, x.(row)) }
func (p *page) Pop() any {
	x := p.rows[len(p.rows)-1]
	p.rows = p.rows[:len(p.rows)-1]
	return x
}

// add offers a matching record to the page.
func (p *page) add(r *flow.Record) {
	k := p.sp.key(r)
	if p.after != nil && !p.sp.before(p.after.k, p.after.id, k, r.ID) {
		return // on an earlier page
	}
	if len(p.rows) > p.limit {
		last := &p.rows[0]
		if !p.sp.before(k, r.ID, last.k, last.id) {
			return
		}
		heap.Pop(p)
	}
	heap.Push(p, row{k: k, id: r.ID, r: *r})
}

// result returns the page's rows in order and the cursor of the next
// page (nil when nothing more matched).
func (p *page) result() ([]row, *cursor) {
	out := append([]row(nil), p.rows...)
	sort.Slice(out, func(i, j int) bool { return p.sp.before(out[i].k, out[i].id, out[j].k, out[j].id) })
	if len(out) <= p.limit {
		return out, nil
	}
	out = out[:p.limit]
	last := out[len(out)-1]
	return out, &cursor{sort: sortName(p.sp), k: last.k, id: last.id}
}

// histogram is the body of /api/v1/flows/histogram.
type histogram struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	BucketSeconds int64     `json:"bucket_seconds"`
	Counts        []int64   `json:"counts"`
	Bytes         []uint64  `json:"bytes"`
}

// handleHistogram counts the matching flows by start time in buckets
// of whole seconds covering the window (flows that started before it
// count in the first bucket).
func (s *Server) handleHistogram(c *call) {
	q, ok := s.searchQuery(c)
	if !ok {
		return
	}
	n, err := intParam(c, "buckets", 60, 1000)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	span := q.To.Sub(q.From)
	width := max(int64((span+time.Duration(n)*time.Second-1)/(time.Duration(n)*time.Second)), 1)
	nb := int(max((int64(span)+width*int64(time.Second)-1)/(width*int64(time.Second)), 1))
	h := histogram{From: q.From.UTC(), To: q.To.UTC(), BucketSeconds: width, Counts: make([]int64, nb), Bytes: make([]uint64, nb)}
	total := 0
	how, err := s.search(c.ctx, q, func(r *flow.Record) error {
		i := int(r.Start.Sub(q.From) / (time.Duration(width) * time.Second))
		i = min(max(i, 0), nb-1)
		h.Counts[i]++
		h.Bytes[i] += r.Source.Bytes + r.Destination.Bytes
		total++
		return nil
	})
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.audit.Flows = total
	s.answerSearch(c, q, how, h)
}

// topRow is one value of /api/v1/flows/top.
type topRow struct {
	Value   string `json:"value"`
	Flows   int64  `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// topBody is the body of /api/v1/flows/top.
type topBody struct {
	By    string   `json:"by"`
	Order string   `json:"order"`
	Rows  []topRow `json:"rows"`
	Other topRow   `json:"other"`
}

// handleTop groups the matching flows by the values of a field and
// answers the n values with the most flows (order=bytes or packets:
// the most bytes or packets); other sums the remaining values. A flow
// counts once under each of its values; flows without the field count
// nowhere.
func (s *Server) handleTop(c *call) {
	q, ok := s.searchQuery(c)
	if !ok {
		return
	}
	v := c.r.URL.Query()
	f, found := flowindex.ByName(v.Get("by"))
	if !found {
		s.fail(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("by %q: not a searchable field (GET /api/v1/fields lists them)", v.Get("by")), nil)
		return
	}
	n, err := intParam(c, "n", 10, 1000)
	order := v.Get("order")
	if order == "" {
		order = "flows"
	}
	if err == nil && order != "flows" && order != "bytes" && order != "packets" {
		err = fmt.Errorf("order %q: want flows, bytes or packets", order)
	}
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	groups := map[string]*topRow{}
	var vals []flowindex.Value
	total := 0
	how, err := s.search(c.ctx, q, func(r *flow.Record) error {
		total++
		vals = f.Values(r, vals[:0])
		for _, x := range vals {
			k := f.Format(x)
			g := groups[k]
			if g == nil {
				if len(groups) >= maxTopGroups {
					return fmt.Errorf("more than %d distinct values of %s: narrow the query", maxTopGroups, f.Name)
				}
				g = &topRow{Value: k}
				groups[k] = g
			}
			g.Flows++
			g.Packets += r.Source.Packets + r.Destination.Packets
			g.Bytes += r.Source.Bytes + r.Destination.Bytes
		}
		return nil
	})
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.audit.Flows = total
	s.answerSearch(c, q, how, rankTop(groups, f.Name, order, n))
}

// maxTopGroups bounds the distinct values one top request keeps.
const maxTopGroups = 1 << 20

// rankTop orders the groups by order (then value) and keeps n.
func rankTop(groups map[string]*topRow, by, order string, n int) topBody {
	rows := make([]topRow, 0, len(groups))
	for _, g := range groups {
		rows = append(rows, *g)
	}
	metric := func(r *topRow) uint64 {
		switch order {
		case "bytes":
			return r.Bytes
		case "packets":
			return r.Packets
		}
		return uint64(r.Flows)
	}
	sort.Slice(rows, func(i, j int) bool {
		if a, b := metric(&rows[i]), metric(&rows[j]); a != b {
			return a > b
		}
		return rows[i].Value < rows[j].Value
	})
	body := topBody{By: by, Order: order, Rows: rows[:min(n, len(rows))]}
	for _, r := range rows[min(n, len(rows)):] {
		body.Other.Flows += r.Flows
		body.Other.Packets += r.Packets
		body.Other.Bytes += r.Bytes
	}
	return body
}

// fieldInfo is one entry of /api/v1/fields.
type fieldInfo struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Description string   `json:"description"`
	Indexed     bool     `json:"indexed"`
	Aliases     []string `json:"aliases,omitempty"`
}

// handleFields lists every searchable field (the registry of
// storage/flowindex), sorted by name.
func (s *Server) handleFields(c *call) {
	aliases := map[string][]string{}
	for a, n := range flowindex.Aliases() {
		aliases[n] = append(aliases[n], a)
	}
	var out []fieldInfo
	for _, f := range flowindex.Fields() {
		as := aliases[f.Name]
		sort.Strings(as)
		out = append(out, fieldInfo{Name: f.Name, Type: f.Type, Description: f.Description, Indexed: f.Indexed(), Aliases: as})
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(c, out)
}

// answerSearch answers a search aggregate with the window and search
// headers.
func (s *Server) answerSearch(c *call, q *query.Query, how string, v any) {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(headerWindow, windowHeader(q))
	h.Set(headerSearch, how)
	s.writeJSON(c, v)
}
