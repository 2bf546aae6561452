package searchindex

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// ErrUntranslatable: a query has a term the OpenSearch backend cannot
// express with the same meaning as tapir's own search. The API answers
// it with 400 rather than different results.
var ErrUntranslatable = errors.New("not translatable to an opensearch query")

// obj is a JSON object of the query DSL.
type obj = map[string]any

// Translate renders a parsed query as an OpenSearch bool query on the
// ECS fields of the flow documents: the query's tree, within its window
// (flows overlapping [From, To], as the store scans).
func Translate(q *query.Query) (map[string]any, error) {
	root, err := translate(q.Root)
	if err != nil {
		return nil, err
	}
	window := []any{
		obj{"range": obj{"event.start": obj{"lte": rfc3339(q.To)}}},
		obj{"range": obj{"event.end": obj{"gte": rfc3339(q.From)}}},
	}
	return obj{"bool": obj{"must": []any{root}, "filter": window}}, nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func untranslatable(n query.Node, why string) error {
	return fmt.Errorf("%q: %s: %w", n.String(), why, ErrUntranslatable)
}

// translate renders one node.
func translate(n query.Node) (map[string]any, error) {
	switch n := n.(type) {
	case query.And:
		return boolOf("must", n)
	case query.Or:
		return boolOf("should", n)
	case query.Not:
		x, err := translate(n.X)
		if err != nil {
			return nil, err
		}
		return obj{"bool": obj{"must_not": []any{x}}}, nil
	case query.Field:
		return fieldQuery(n)
	}
	return termQuery(n)
}

// boolOf combines the operands of And ("must") or Or ("should").
func boolOf(occur string, ns []query.Node) (map[string]any, error) {
	xs := make([]any, 0, len(ns))
	for _, x := range ns {
		t, err := translate(x)
		if err != nil {
			return nil, err
		}
		xs = append(xs, t)
	}
	b := obj{occur: xs}
	if occur == "should" {
		b["minimum_should_match"] = 1
	}
	return obj{"bool": b}, nil
}

// termQuery renders the Stenographer/tcpdump terms.
func termQuery(n query.Node) (map[string]any, error) {
	switch n := n.(type) {
	case query.Host:
		return ends(n.Dir, "ip", n.Addr.String()), nil
	case query.Net:
		return ends(n.Dir, "ip", n.Prefix.String()), nil
	case query.Port:
		if n.Port == 0 {
			return nil, untranslatable(n, "the flow documents have no port 0")
		}
		return ends(n.Dir, "port", int(n.Port)), nil
	case query.PortRange:
		return endsQuery(n.Dir, func(f string) any {
			return obj{"range": obj{f + ".port": obj{"gte": int(n.Lo), "lte": int(n.Hi)}}}
		}), nil
	case query.Family:
		if n.V6 {
			return term("network.type", "ipv6"), nil
		}
		return term("network.type", "ipv4"), nil
	case query.Proto:
		if n.ICMP {
			return anyOf(term("network.iana_number", "1"), term("network.iana_number", "58")), nil
		}
		if n.Proto == 0 {
			return nil, untranslatable(n, "the flow documents have no protocol 0")
		}
		return term("network.iana_number", strconv.Itoa(int(n.Proto))), nil
	case query.VLAN:
		if n.ID == 0 {
			return obj{"bool": obj{"must_not": []any{obj{"exists": obj{"field": "tapir.vlan"}}}}}, nil
		}
		return anyOf(term("tapir.vlan", int(n.ID)), term("tapir.inner_vlan", int(n.ID))), nil
	case query.Tunnel:
		if n.Type == flow.TunnelNone {
			return obj{"exists": obj{"field": "tapir.tunnels.type"}}, nil
		}
		return term("tapir.tunnels.type", n.Type.String()), nil
	case query.TunnelID:
		return anyOf(term("tapir.tunnels.vni", n.ID), term("tapir.tunnels.key", n.ID),
			term("tapir.tunnels.session_id", n.ID), term("tapir.tunnels.teid", n.ID)), nil
	case query.TunnelHost:
		a := n.Addr.String()
		return anyOf(term("tapir.tunnels.source.ip", a), term("tapir.tunnels.destination.ip", a)), nil
	case query.After:
		return obj{"range": obj{"event.end": obj{"gte": rfc3339(n.T)}}}, nil
	case query.Before:
		return obj{"range": obj{"event.start": obj{"lte": rfc3339(n.T)}}}, nil
	}
	return nil, untranslatable(n, "unknown term")
}

// ends applies a term on source.<leaf> and destination.<leaf> as the
// direction qualifier says.
func ends(d query.Dir, leaf string, v any) map[string]any {
	return endsQuery(d, func(f string) any { return term(f+"."+leaf, v) })
}

func endsQuery(d query.Dir, q func(end string) any) map[string]any {
	src, dst := q("source"), q("destination")
	switch d {
	case query.DirSrc:
		return obj{"bool": obj{"must": []any{src}}}
	case query.DirDst:
		return obj{"bool": obj{"must": []any{dst}}}
	case query.DirBoth:
		return obj{"bool": obj{"must": []any{src, dst}}}
	}
	return anyOf(src, dst)
}

func term(field string, v any) map[string]any { return obj{"term": obj{field: v}} }

func anyOf(qs ...any) map[string]any {
	return obj{"bool": obj{"should": qs, "minimum_should_match": 1}}
}

// nestedPrefixes are fields mapped as nested objects (one match must
// come from one threat match): not translated.
var nestedPrefixes = []string{"threat."}

// fieldQuery renders a field predicate.
func fieldQuery(n query.Field) (map[string]any, error) {
	name := n.F.Name
	for _, p := range nestedPrefixes {
		if strings.HasPrefix(name, p) {
			return nil, untranslatable(n, "nested field, search it on the store backend")
		}
	}
	if n.Op == query.OpExists {
		return exists(n.F), nil
	}
	eq := n.Op
	if eq == query.OpNe {
		eq = query.OpEq
	}
	q, err := fieldCompare(n, eq)
	if err != nil {
		return nil, err
	}
	if n.Op == query.OpNe {
		return obj{"bool": obj{"must_not": []any{q}}}, nil
	}
	return q, nil
}

// exists matches documents with a value of f. An empty text is no value
// for tapir (the registry leaves it out) but is one for OpenSearch (the
// ECS JSON writes some, such as dns.question.name, when empty): a text
// field exists with at least one character.
func exists(f *flowindex.Field) map[string]any {
	if f.Kind == flowindex.KindKeyword {
		return obj{"wildcard": obj{f.Name: obj{"value": "?*"}}}
	}
	return obj{"exists": obj{"field": f.Name}}
}

// rangeOps maps the ordered operators to range parameters.
var rangeOps = map[string]string{query.OpLt: "lt", query.OpLe: "lte", query.OpGt: "gt", query.OpGe: "gte"}

// fieldCompare renders FIELD op VALUE (op is == or an ordered operator).
func fieldCompare(n query.Field, op string) (map[string]any, error) {
	v, err := fieldValue(n)
	if err != nil {
		return nil, err
	}
	name := n.F.Name
	if op != query.OpEq {
		return obj{"range": obj{name: obj{rangeOps[op]: v}}}, nil
	}
	if n.F.Kind == flowindex.KindBool && v == false {
		// false is left out of the documents (omitempty): not true.
		return obj{"bool": obj{"must_not": []any{term(name, true)}}}, nil
	}
	if n.F.Kind != flowindex.KindKeyword {
		return term(name, v), nil
	}
	if strings.Trim(n.Raw, "*") == "" && n.Raw != "" {
		return exists(n.F), nil
	}
	if strings.Contains(n.Raw, "*") {
		pat := strings.NewReplacer(`\`, `\\`, `?`, `\?`).Replace(n.Raw)
		return obj{"wildcard": obj{name: obj{"value": pat, "case_insensitive": true}}}, nil
	}
	return obj{"term": obj{name: obj{"value": n.Raw, "case_insensitive": true}}}, nil
}

// fieldValue converts a predicate's value as written to the JSON value
// OpenSearch compares with.
func fieldValue(n query.Field) (any, error) {
	raw := n.Raw
	switch n.F.Kind {
	case flowindex.KindKeyword:
		return raw, nil
	case flowindex.KindIP:
		if p, err := netip.ParsePrefix(raw); err == nil {
			return p.Masked().String(), nil
		}
		a, err := netip.ParseAddr(strings.Trim(raw, "[]"))
		if err != nil {
			return nil, untranslatable(n, "address form not supported here")
		}
		return a.Unmap().String(), nil
	case flowindex.KindLong:
		x, ok := query.ParseNumber(raw)
		if !ok {
			return nil, untranslatable(n, "number form not supported here")
		}
		return x, nil
	case flowindex.KindDuration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return nil, untranslatable(n, "duration form not supported here (use 500ms, 5s, 2m, 1h)")
		}
		return d.Nanoseconds(), nil
	case flowindex.KindDate:
		return dateValue(n)
	case flowindex.KindBool:
		return strings.EqualFold(raw, "true"), nil
	}
	return nil, untranslatable(n, "unknown field kind")
}

// dateValue reads RFC 3339, YYYY-MM-DD or Unix seconds.
func dateValue(n query.Field) (any, error) {
	if t, err := time.Parse(time.RFC3339Nano, n.Raw); err == nil {
		return rfc3339(t), nil
	}
	if t, err := time.Parse("2006-01-02", n.Raw); err == nil {
		return rfc3339(t), nil
	}
	if s, err := strconv.ParseInt(n.Raw, 10, 64); err == nil {
		return rfc3339(time.Unix(s, 0)), nil
	}
	return nil, untranslatable(n, "time form not supported here (use RFC 3339, YYYY-MM-DD or Unix seconds)")
}
