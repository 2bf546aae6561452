package query

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

// Comparison operators of field predicates.
const (
	OpEq     = "=="
	OpNe     = "!="
	OpLt     = "<"
	OpLe     = "<="
	OpGt     = ">"
	OpGe     = ">="
	OpExists = "exists"
)

// Field is a field predicate: FIELD OP VALUE on a field of the registry
// (storage/flowindex), or FIELD exists. A field with several values (DNS
// answers, ALPN offers, threat matches, tunnel levels) matches when one
// of them does; "!=" is the negation of "==" (a record without the field
// matches it).
type Field struct {
	F   *flowindex.Field
	Op  string
	Raw string // the value as written (unquoted)

	pat    pattern      // keywords: the value, with * wildcards
	prefix netip.Prefix // addresses: the address (all bits) or prefix
	n      int64        // numbers, durations, times, booleans
}

// Match implements Node.
func (n Field) Match(r *flow.Record) bool {
	var buf [4]flowindex.Value
	vals := n.F.Values(r, buf[:0])
	switch n.Op {
	case OpExists:
		return len(vals) > 0
	case OpNe:
		return !n.any(vals, OpEq)
	}
	return n.any(vals, n.Op)
}

// any reports whether some value satisfies op.
func (n Field) any(vals []flowindex.Value, op string) bool {
	for _, v := range vals {
		if n.test(v, op) {
			return true
		}
	}
	return false
}

func (n Field) test(v flowindex.Value, op string) bool {
	switch n.F.Kind {
	case flowindex.KindKeyword:
		return n.pat.match(v.S)
	case flowindex.KindIP:
		if op == OpEq {
			return n.prefix.Contains(v.A)
		}
		return compare(v.A.Compare(n.prefix.Addr()), op)
	}
	c := 0
	if v.N < n.n {
		c = -1
	} else if v.N > n.n {
		c = 1
	}
	return compare(c, op)
}

// compare applies op to the result of a three-way comparison.
func compare(c int, op string) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

// String implements Node.
func (n Field) String() string {
	if n.Op == OpExists {
		return n.F.Name + " exists"
	}
	v := n.Raw
	if n.F.Kind == flowindex.KindKeyword || !plainValue(v) {
		v = strconv.Quote(v)
	}
	return n.F.Name + " " + n.Op + " " + v
}

// plainValue reports whether a value reads back as one word unquoted.
func plainValue(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\n\r()\"!") && !strings.EqualFold(s, "and") && !strings.EqualFold(s, "or") && !strings.EqualFold(s, "not")
}

func (Field) bounds() (lo, hi time.Time) { return }

// pattern is a keyword value with * wildcards, compared without regard
// to ASCII case (the index folds ASCII case only, so Match must too).
type pattern struct {
	parts []string // the value split at each *
}

func newPattern(s string) pattern { return pattern{parts: strings.Split(s, "*")} }

// wild reports whether the pattern has a wildcard.
func (p pattern) wild() bool { return len(p.parts) > 1 }

func (p pattern) match(s string) bool {
	ps := p.parts
	if len(ps) == 1 {
		return equalFoldASCII(s, ps[0])
	}
	first, last := ps[0], ps[len(ps)-1]
	if len(s) < len(first)+len(last) || !equalFoldASCII(s[:len(first)], first) || !equalFoldASCII(s[len(s)-len(last):], last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, mid := range ps[1 : len(ps)-1] {
		i := indexFoldASCII(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// Number suffixes of long values: decimal (K, M, G, T, with or without B)
// and binary (KiB, MiB, GiB, TiB).
var numberSuffixes = []struct {
	s string
	m int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
}

// ParseNumber parses a long value of the query language: an integer with
// an optional K, M, G, T (B) or KiB, MiB, GiB, TiB suffix. It is false
// when s is not one or the value overflows.
func ParseNumber(s string) (int64, bool) {
	ls := strings.ToLower(s)
	mult := int64(1)
	for _, x := range numberSuffixes {
		if strings.HasSuffix(ls, x.s) {
			ls, mult = ls[:len(ls)-len(x.s)], x.m
			break
		}
	}
	neg := strings.HasPrefix(ls, "-")
	v, err := strconv.ParseUint(strings.TrimPrefix(ls, "-"), 10, 63)
	if err != nil || (mult > 1 && v > uint64(1<<62/mult)) {
		return 0, false
	}
	n := int64(v) * mult
	if neg {
		n = -n
	}
	return n, true
}

// ops are the comparison operators, longest first (for splitting
// "packets>=100").
var ops = []string{OpEq, OpNe, OpLe, OpGe, "=", OpLt, OpGt}

// cutOp splits s at its first operator: "bytes>1MB" is "bytes", ">",
// "1MB". ok is false when s holds none.
func cutOp(s string) (left, op, right string, ok bool) {
	best := -1
	for _, o := range ops {
		if i := strings.Index(s, o); i >= 0 && (best < 0 || i < best || i == best && len(o) > len(op)) {
			best, op = i, o
		}
	}
	if best < 0 {
		return s, "", "", false
	}
	return s[:best], op, s[best+len(op):], true
}

// fieldStart reports whether the word at t starts a field predicate: a
// registry field name (or alias) followed by an operator or "exists",
// written apart or together ("packets>100").
func (p *parser) fieldStart(t token) bool {
	if t.kind != tWord {
		return false
	}
	name, _, _, joined := cutOp(t.text)
	if _, ok := flowindex.ByName(name); !ok {
		return false
	}
	if joined {
		return true
	}
	n := p.peek()
	if p.isWord(n, OpExists) {
		return true
	}
	_, op, _, ok := cutOp(n.text)
	return n.kind == tWord && ok && strings.HasPrefix(n.text, op)
}

// parseField parses a field predicate starting at t (fieldStart is true).
func (p *parser) parseField(t token) (Node, error) {
	name, op, rest, joined := cutOp(t.text)
	f, _ := flowindex.ByName(name)
	if !joined {
		o := p.next()
		if p.isWord(o, OpExists) {
			return p.node(Field{F: f, Op: OpExists})
		}
		_, op, _, _ = cutOp(o.text)
		rest = o.text[len(op):]
	}
	if op == "=" {
		op = OpEq
	}
	v := token{kind: tWord, text: rest, pos: t.pos}
	if rest == "" {
		v = p.next()
	}
	if v.kind != tWord && v.kind != tString {
		return nil, p.errAt(v, "a value after "+strconv.Quote(f.Name+" "+op), "")
	}
	n, err := p.fieldValue(f, op, v)
	if err != nil {
		return nil, err
	}
	return p.node(n)
}

// fieldValue parses the value of a predicate on f.
func (p *parser) fieldValue(f *flowindex.Field, op string, v token) (Field, error) {
	n := Field{F: f, Op: op, Raw: v.text}
	bad := func(what string) (Field, error) {
		return Field{}, p.errAt(v, what+" after "+strconv.Quote(f.Name+" "+op), "")
	}
	ordered := op != OpEq && op != OpNe
	switch f.Kind {
	case flowindex.KindKeyword:
		if ordered {
			return bad(`"==" or "!=" (text fields are not ordered)`)
		}
		n.pat = newPattern(v.text)
	case flowindex.KindIP:
		if pf, err := netip.ParsePrefix(v.text); err == nil && !ordered && pf.Addr().Zone() == "" {
			n.prefix = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-unmapBits(pf.Addr())).Masked()
			break
		}
		a, err := parseAddr(token{kind: tWord, text: v.text})
		if err != nil {
			return bad("an IP address or prefix")
		}
		n.prefix = netip.PrefixFrom(a, a.BitLen())
	case flowindex.KindLong:
		x, ok := ParseNumber(v.text)
		if !ok {
			return bad("a number (optionally with K, M, G, KiB, MiB...)")
		}
		n.n = x
	case flowindex.KindDuration:
		d, ok := parseDuration(v.text)
		if !ok {
			return bad("a duration such as 500ms, 5s, 2m or 1h")
		}
		n.n = int64(d)
	case flowindex.KindDate:
		ts, ok := parseAbsTime(v.text)
		if !ok {
			return bad("a time (RFC 3339, YYYY-MM-DD or unix seconds)")
		}
		n.n = ts.UnixNano()
	case flowindex.KindBool:
		switch strings.ToLower(v.text) {
		case "true":
			n.n = 1
		case "false":
		default:
			return bad(`true or false`)
		}
		if ordered {
			return bad(`"==" or "!="`)
		}
	}
	return n, nil
}

// unmapBits is how many leading bits of a prefix's address are the
// IPv4-mapped form's (96 for ::ffff:a.b.c.d, else 0).
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}
