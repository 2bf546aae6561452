package query

import (
	"net/netip"
	"slices"

	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// IndexLookup compiles the indexable part of the query into a lookup of
// the flow search index, or nil when no part is indexable (the store
// then scans the window). The lookup yields a superset of the matching
// records: its caller still checks each with Match. Indexable are field
// predicates "==" on indexed fields (exact values, a prefix before the
// first *, a suffix after a leading * on name fields, an address or a
// prefix), host, net and port terms, and "and"/"or" of them; an "and"
// needs one indexable operand, an "or" needs all of them.
func (q *Query) IndexLookup() flowindex.Lookup { return lookupOf(q.Root) }

func lookupOf(n Node) flowindex.Lookup {
	switch n := n.(type) {
	case And:
		var all flowindex.All
		for _, x := range n {
			if l := lookupOf(x); l != nil {
				all = append(all, l)
			}
		}
		return one(all)
	case Or:
		var anyOf flowindex.Any
		for _, x := range n {
			l := lookupOf(x)
			if l == nil {
				return nil
			}
			anyOf = append(anyOf, l)
		}
		return anyOf
	case Host:
		return ends(n.Dir, func(f *flowindex.Field) flowindex.Lookup { return term(f, flowindex.Value{A: n.Addr}) }, "ip")
	case Net:
		return ends(n.Dir, func(f *flowindex.Field) flowindex.Lookup { return flowindex.Prefix(f, n.Prefix) }, "ip")
	case Port:
		return ends(n.Dir, func(f *flowindex.Field) flowindex.Lookup { return term(f, flowindex.Value{N: int64(n.Port)}) }, "port")
	case Field:
		return n.lookup()
	}
	return nil
}

// one returns the only lookup of all, all itself, or nil when empty.
func one(all flowindex.All) flowindex.Lookup {
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return all
}

// ends builds the lookup of a host, net or port term at the ends d names.
func ends(d Dir, lookup func(*flowindex.Field) flowindex.Lookup, what string) flowindex.Lookup {
	src, _ := flowindex.ByName("source." + what)
	dst, _ := flowindex.ByName("destination." + what)
	s, t := lookup(src), lookup(dst)
	switch {
	case d == DirSrc:
		return s
	case d == DirDst:
		return t
	case d == DirBoth:
		return one(slices.DeleteFunc(flowindex.All{s, t}, func(l flowindex.Lookup) bool { return l == nil }))
	case s == nil || t == nil:
		return nil
	}
	return flowindex.Any{s, t}
}

// term is the lookup of one value of f, nil when the index does not
// hold that value's postings.
func term(f *flowindex.Field, v flowindex.Value) flowindex.Lookup {
	if !f.Indexes(v) {
		return nil
	}
	return flowindex.Term{Field: f, Value: v}
}

// lookup is the index lookup of a field predicate (nil: not indexable).
func (n Field) lookup() flowindex.Lookup {
	if n.Op != OpEq || !n.F.Indexed() {
		return nil
	}
	switch n.F.Kind {
	case flowindex.KindKeyword:
		return n.keywordLookup()
	case flowindex.KindIP:
		if n.prefix.IsSingleIP() {
			return flowindex.Term{Field: n.F, Value: flowindex.Value{A: n.prefix.Addr()}}
		}
		return flowindex.Prefix(n.F, netip.PrefixFrom(n.prefix.Addr(), n.prefix.Bits()))
	case flowindex.KindLong:
		return term(n.F, flowindex.Value{N: n.n})
	}
	return nil
}

// keywordLookup: an exact value, the text before the first * (a
// prefix), or the domain suffix of "*.example.com" (on name fields,
// which index their domain suffixes).
func (n Field) keywordLookup() flowindex.Lookup {
	ps := n.pat.parts
	switch {
	case !n.pat.wild():
		return flowindex.Term{Field: n.F, Value: flowindex.Value{S: ps[0]}}
	case ps[0] != "":
		return flowindex.Term{Field: n.F, Value: flowindex.Value{S: ps[0]}, Prefix: true}
	case n.F.Suffix && len(ps) == 2 && len(ps[1]) > 1 && ps[1][0] == '.':
		return flowindex.Term{Field: n.F, Value: flowindex.Value{S: ps[1][1:]}, Suffix: true}
	}
	return nil
}
