package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tapir-sensor/tapir/collector/api/client"
)

// topOutput aggregates the listed flows by one ECS field and writes the
// N values with the most bytes, packets or flows (nfdump -s FIELD/ORDER
// -n N), as a table, JSON lines or CSV.
type topOutput struct {
	w      io.Writer
	n      int
	by     string
	group  string
	path   []string
	format string
	groups map[string]*topGroup
}

// topGroup is the running total of one value of the group field.
type topGroup struct {
	Value   string `json:"value"`
	Flows   uint64 `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func newTopOutput(w io.Writer, a *flowsArgs) *topOutput {
	return &topOutput{w: w, n: a.top, by: a.by, group: a.group, path: strings.Split(a.group, "."),
		format: a.output, groups: map[string]*topGroup{}}
}

func (o *topOutput) add(doc json.RawMessage) error {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("decode flow: %w", err)
	}
	var r ecsRow
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("decode flow: %w", err)
	}
	v := fieldText(m, o.path)
	g := o.groups[v]
	if g == nil {
		g = &topGroup{Value: v}
		o.groups[v] = g
	}
	g.Flows++
	g.Packets += r.Network.Packets
	g.Bytes += r.Network.Bytes
	return nil
}

// fieldText returns the value at a dotted path of a decoded document as
// text, "" when absent.
func fieldText(m map[string]any, path []string) string {
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[p]
	}
	switch v := cur.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// ranked returns the top n groups, most first, ties by value.
func (o *topOutput) ranked() []*topGroup {
	list := make([]*topGroup, 0, len(o.groups))
	for _, g := range o.groups {
		list = append(list, g)
	}
	key := func(g *topGroup) uint64 {
		switch o.by {
		case "packets":
			return g.Packets
		case "flows":
			return g.Flows
		}
		return g.Bytes
	}
	slices.SortFunc(list, func(a, b *topGroup) int {
		if ka, kb := key(a), key(b); ka != kb {
			if ka > kb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	return list[:min(o.n, len(list))]
}

func (o *topOutput) flush() error {
	list := o.ranked()
	switch o.format {
	case "json":
		enc := json.NewEncoder(o.w)
		for _, g := range list {
			if err := enc.Encode(map[string]any{o.group: g.Value, "flows": g.Flows, "packets": g.Packets, "bytes": g.Bytes}); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		rows := newRowsOutputHeader(o.w, "csv", []string{o.group, "flows", "packets", "bytes"})
		for _, g := range list {
			rows.write([]string{g.Value, strconv.FormatUint(g.Flows, 10), strconv.FormatUint(g.Packets, 10), strconv.FormatUint(g.Bytes, 10)})
		}
		return rows.flush()
	}
	rows := newRowsOutputHeader(o.w, "table", []string{strings.ToUpper(o.group), "FLOWS", "PACKETS", "BYTES"})
	for _, g := range list {
		v := g.Value
		if v == "" {
			v = "(none)"
		}
		rows.write([]string{v, strconv.FormatUint(g.Flows, 10), strconv.FormatUint(g.Packets, 10), client.HumanBytes(float64(g.Bytes))})
	}
	return rows.flush()
}
