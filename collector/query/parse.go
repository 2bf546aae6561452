package query

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// Errors returned by Parse. Every error Parse returns wraps one of them.
var (
	// ErrSyntax: the query is not well formed; the error is a *SyntaxError.
	ErrSyntax = errors.New("query: syntax error")
	// ErrTooLong: the query is longer than Config.MaxLength.
	ErrTooLong = errors.New("query: too long")
	// ErrTooComplex: the query has more nodes or nesting than allowed.
	ErrTooComplex = errors.New("query: too complex")
	// ErrEmptyWindow: the query's time bounds leave no time to search.
	ErrEmptyWindow = errors.New("query: empty time window")
	// ErrWindowTooLong: the resolved time window exceeds Config.MaxWindow.
	ErrWindowTooLong = errors.New("query: time window too long")
)

// SyntaxError reports where parsing failed and what was expected there.
type SyntaxError struct {
	Pos      int    // byte offset of the offending token (len(query) at the end)
	Found    string // the offending token, or "end of query"
	Expected string // what the parser wanted, e.g. "address after \"host\""
	Detail   string // optional reason, e.g. the address parser's complaint
}

func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("query: at position %d: expected %s, found %s", e.Pos+1, e.Expected, e.Found)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Query is a parsed query. It is immutable and safe for concurrent use.
type Query struct {
	// Root is the syntax tree.
	Root Node
	// From and To are the resolved time window to scan: the query's own
	// after/before bounds, completed with Config.DefaultWindow.
	From, To time.Time
	nodes    int
}

// Match reports whether the record satisfies the query (its time terms
// included).
func (q *Query) Match(r *flow.Record) bool { return q.Root.Match(r) }

// Bounds returns the time bounds the query itself states: the latest
// "after" that every match must satisfy and the earliest such "before".
// A zero time means unbounded on that side. "not" and "or" are handled
// conservatively (a superset of the true interval).
func (q *Query) Bounds() (after, before time.Time) { return q.Root.bounds() }

// Window returns the resolved window [From, To].
func (q *Query) Window() (from, to time.Time) { return q.From, q.To }

// Nodes returns the number of nodes in the tree.
func (q *Query) Nodes() int { return q.nodes }

// String renders the query in canonical syntax (relative times resolved).
func (q *Query) String() string { return q.Root.String() }

// Time values are accepted from 1970 until this bound, so that every
// accepted time renders and parses back in RFC 3339.
var maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// Parse parses src with the limits of cfg; relative times ("5m ago") are
// taken relative to now, which also ends the default window.
//
// Grammar (keywords are case-insensitive; "and" binds tighter than "or"):
//
//	expr    = and { ("or" | "||") and }
//	and     = unary { ("and" | "&&") unary }
//	unary   = ("not" | "!") unary | primary
//	primary = "(" expr ")" | [PROTO] qualified | PROTO ["proto" (NAME | N)]
//	        | "proto" (NAME | N) | "vlan" N | "before" TIME | "after" TIME | ID
//	        | "tunnel" (TUNNEL | "any") | "tunnel-id" N | "tunnel-host" ADDR
//	PROTO   = "tcp" | "udp" | "icmp" | "icmp6" | "sctp" | "ip" | "ip6"
//	qualified = DIR [TYPE] ID | TYPE ID
//	DIR     = "src" | "dst" | "src or dst" | "src and dst"
//	TYPE    = "host" | "net" | "port" | "portrange"
//	ID      = ADDR | PREFIX | ADDR "mask" ADDR | N | N "-" N
//	TUNNEL  = ipip | gre | erspan1 | erspan2 | erspan3 | vxlan | geneve | gtpu | teredo
//	TIME    = RFC3339 | YYYY-MM-DD | unix seconds[.frac] | DURATION "ago" | "now"
//	DURATION = Go duration ("90s", "1h30m") or N "d" / N "w"
//
// A protocol written before a qualified term is tcpdump's protocol
// qualifier and means both ("tcp port 80" is "tcp and port 80"). A
// qualified term without TYPE is a host, or a net when ID has a /; a bare
// ID reuses the qualifiers of the last qualified term (a host at first),
// as tcpdump does: "port 80 or 443".
func Parse(src string, now time.Time, cfg Config) (*Query, error) {
	if len(src) > cfg.MaxLength {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", len(src), cfg.MaxLength, ErrTooLong)
	}
	p := &parser{src: src, now: now, cfg: cfg, last: defaultQuals}
	p.toks = lex(src)
	root, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, `"and", "or" or end of query`, "")
	}
	q := &Query{Root: root, nodes: p.nodes}
	if err := q.resolveWindow(now, cfg); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Query) resolveWindow(now time.Time, cfg Config) error {
	lo, hi := q.Root.bounds()
	switch {
	case lo.IsZero() && hi.IsZero():
		q.From, q.To = now.Add(-cfg.DefaultWindow), now
	case hi.IsZero():
		q.From, q.To = lo, now
		if q.To.Before(lo) {
			q.To = lo.Add(cfg.DefaultWindow)
		}
	case lo.IsZero():
		q.From, q.To = hi.Add(-cfg.DefaultWindow), hi
	default:
		q.From, q.To = lo, hi
	}
	if q.To.Before(q.From) {
		return fmt.Errorf("after %s is later than before %s: %w",
			q.From.UTC().Format(time.RFC3339Nano), q.To.UTC().Format(time.RFC3339Nano), ErrEmptyWindow)
	}
	if cfg.MaxWindow > 0 && q.To.Sub(q.From) > cfg.MaxWindow {
		return fmt.Errorf("window of %v, limit %v: %w", q.To.Sub(q.From), cfg.MaxWindow, ErrWindowTooLong)
	}
	return nil
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tLParen
	tRParen
	tString // a quoted string; text is its value
	tBad    // an unterminated or malformed quoted string
)

type token struct {
	kind tokKind
	text string
	pos  int
}

// lex splits the query into words and parentheses. Words are maximal runs
// of characters other than white space and parentheses; "!" at the start
// of a word is a token of its own.
func lex(s string) []token {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '!' && (i+1 >= len(s) || s[i+1] != '='):
			toks = append(toks, token{tWord, "!", i})
			i++
		case c == '"':
			j := quotedEnd(s, i)
			if v, err := strconv.Unquote(s[i:j]); err == nil {
				toks = append(toks, token{tString, v, i})
			} else {
				toks = append(toks, token{tBad, s[i:j], i})
			}
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	return append(toks, token{tEOF, "", len(s)})
}

// quotedEnd returns the end of the quoted string starting at s[i] (just
// past its closing quote, or len(s) when it has none).
func quotedEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(s)
}

type parser struct {
	src   string
	toks  []token
	i     int
	nodes int
	now   time.Time
	cfg   Config
	last  quals // qualifiers a bare ID reuses
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of query"
	}
	if len(t.text) > 40 {
		return strconv.Quote(t.text[:40] + "...")
	}
	return strconv.Quote(t.text)
}

func (p *parser) errAt(t token, expected, detail string) error {
	return &SyntaxError{Pos: t.pos, Found: describe(t), Expected: expected, Detail: detail}
}

func (p *parser) node(n Node) (Node, error) {
	p.nodes++
	if p.nodes > p.cfg.MaxNodes {
		return nil, fmt.Errorf("more than %d nodes: %w", p.cfg.MaxNodes, ErrTooComplex)
	}
	return n, nil
}

func (p *parser) isWord(t token, words ...string) bool {
	if t.kind != tWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			return true
		}
	}
	return false
}

func (p *parser) depth(d int) error {
	if d > p.cfg.MaxDepth {
		return fmt.Errorf("nesting deeper than %d: %w", p.cfg.MaxDepth, ErrTooComplex)
	}
	return nil
}

func (p *parser) parseOr(d int) (Node, error) {
	if err := p.depth(d); err != nil {
		return nil, err
	}
	x, err := p.parseAnd(d)
	if err != nil {
		return nil, err
	}
	var or Or
	for p.isWord(p.peek(), "or", "||") {
		p.next()
		y, err := p.parseAnd(d)
		if err != nil {
			return nil, err
		}
		if or == nil {
			or = Or{x}
		}
		or = append(or, y)
	}
	if or == nil {
		return x, nil
	}
	return p.node(or)
}

func (p *parser) parseAnd(d int) (Node, error) {
	x, err := p.parseUnary(d)
	if err != nil {
		return nil, err
	}
	var and And
	for p.isWord(p.peek(), "and", "&&") {
		p.next()
		y, err := p.parseUnary(d)
		if err != nil {
			return nil, err
		}
		if and == nil {
			and = And{x}
		}
		and = append(and, y)
	}
	if and == nil {
		return x, nil
	}
	return p.node(and)
}

func (p *parser) parseUnary(d int) (Node, error) {
	if p.isWord(p.peek(), "not", "!") {
		if err := p.depth(d + 1); err != nil {
			return nil, err
		}
		p.next()
		x, err := p.parseUnary(d + 1)
		if err != nil {
			return nil, err
		}
		return p.node(Not{X: x})
	}
	return p.parsePrimary(d)
}

const termExpected = `a term ("host", "net", "port", "portrange", "src", "dst", "proto", "tcp", "udp", "icmp", "ip", "ip6", "vlan", "tunnel", "tunnel-id", "tunnel-host", "before", "after", FIELD OP VALUE, FIELD exists, "not" or "(")`

// quals are tcpdump's qualifiers of a host, net, port or portrange term:
// an optional protocol ("tcp port 80"), a direction and the type. A bare
// ID after "and", "or" or "not" reuses the last term's qualifiers, as in
// tcpdump ("port 80 or 443", "host 10.0.0.1 and not 10.0.0.2").
type quals struct {
	proto   Node   // nil, or the protocol qualifier (a Proto or a Family)
	dir     Dir    // direction
	typ     string // "host", "net", "port" or "portrange"
	implied bool   // the type was not written: a prefix is then a net
	label   string // how errors name the qualifiers, e.g. `after "dst port"`
}

// defaultQuals are those of a bare ID before any typed term: tcpdump
// takes it for a host (or a net when it has a /).
var defaultQuals = quals{typ: "host", implied: true, label: "(a bare ID is a host, or a net with /)"}

func (p *parser) parsePrimary(d int) (Node, error) {
	t := p.next()
	if t.kind == tLParen {
		x, err := p.parseOr(d + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c, `")" closing "(" at position `+strconv.Itoa(t.pos+1), "")
		}
		return x, nil
	}
	if t.kind != tWord {
		return nil, p.errAt(t, termExpected, "")
	}
	switch w := strings.ToLower(t.text); w {
	case "host", "net", "port", "portrange", "src", "dst":
		p.i-- // the qualifiers start at t
		return p.parseQualified(nil)
	case "vlan":
		a := p.next()
		n, err := parseUint(a, 4095)
		if err != nil {
			return nil, p.errAt(a, `a VLAN ID (0-4095) after "vlan"`, "")
		}
		return p.node(VLAN{ID: uint16(n)})
	case "tunnel", "tunnel-id", "tunnel-host":
		return p.parseTunnel(strings.ToLower(t.text))
	case "proto":
		return p.parseProto()
	case "tcp", "udp", "icmp", "icmp6", "sctp", "ip", "ip6":
		return p.parseProtoWord(t, w)
	case "before", "after":
		ts, err := p.parseTime(w)
		if err != nil {
			return nil, err
		}
		if w == "before" {
			return p.node(Before{T: ts})
		}
		return p.node(After{T: ts})
	}
	if p.fieldStart(t) {
		return p.parseField(t)
	}
	if isBareID(t) {
		p.i--
		return p.parseID(p.last)
	}
	return nil, p.errAt(t, termExpected, "")
}

// parseProto parses what follows "proto".
func (p *parser) parseProto() (Node, error) {
	a := p.next()
	if pr, ok := protoWord(a); ok {
		return p.node(pr)
	}
	n, err := parseUint(a, 255)
	if err != nil {
		return nil, p.errAt(a, `a protocol (tcp, udp, icmp, icmp6, sctp or 0-255) after "proto"`, "")
	}
	return p.node(Proto{Proto: uint8(n)})
}

// parseProtoWord parses a protocol keyword: a term of its own ("tcp"), or
// tcpdump's protocol qualifier of the term that follows it ("tcp port
// 80", "udp dst port 53", "ip6 net 2001:db8::/32", "ip proto 6"), which
// means both.
func (p *parser) parseProtoWord(t token, w string) (Node, error) {
	var pr Node = Family{V6: w == "ip6"}
	if w != "ip" && w != "ip6" {
		pr, _ = protoWord(t)
	}
	switch {
	case p.isWord(p.peek(), "proto"):
		p.next()
		x, err := p.parseProto()
		if err != nil {
			return nil, err
		}
		return p.both(pr, x)
	case p.isWord(p.peek(), "host", "net", "port", "portrange", "src", "dst"):
		return p.parseQualified(pr)
	}
	return p.node(pr)
}

// both counts and returns "a and b" for a qualifier and its term.
func (p *parser) both(a, b Node) (Node, error) {
	if _, err := p.node(a); err != nil {
		return nil, err
	}
	return p.node(And{a, b})
}

// parseQualified parses [src|dst|src or dst|src and dst] [TYPE] ID after
// an optional protocol qualifier, and remembers the qualifiers for bare
// IDs that follow.
func (p *parser) parseQualified(proto Node) (Node, error) {
	q := quals{proto: proto, typ: "host", implied: true}
	q.dir = p.parseDir()
	if t := p.peek(); p.isWord(t, "host", "net", "port", "portrange") {
		p.next()
		q.typ, q.implied = strings.ToLower(t.text), false
	}
	q.label = "after " + strconv.Quote(strings.TrimSpace(q.dir.prefix()+q.typ))
	if q.implied {
		q.label = "after " + strconv.Quote(strings.TrimSpace(q.dir.prefix())) + " (a host, or a net with /)"
	}
	p.last = q
	return p.parseID(q)
}

// parseDir parses an optional direction qualifier.
func (p *parser) parseDir() Dir {
	t := p.peek()
	if p.isWord(t, "dst") {
		p.next()
		return DirDst
	}
	if !p.isWord(t, "src") {
		return DirEither
	}
	p.next()
	if p.i+1 < len(p.toks) && p.isWord(p.toks[p.i+1], "dst") {
		switch {
		case p.isWord(p.peek(), "or", "||"):
			p.i += 2
			return DirEither
		case p.isWord(p.peek(), "and", "&&"):
			p.i += 2
			return DirBoth
		}
	}
	return DirSrc
}

// isBareID reports whether a word that is no keyword looks like an ID (an
// address, prefix, port or port range) that reuses the last qualifiers.
func isBareID(t token) bool {
	return t.kind == tWord && t.text != "" && (t.text[0] >= '0' && t.text[0] <= '9' || strings.Contains(t.text, ":"))
}

// parseID parses the ID of a term with qualifiers q.
func (p *parser) parseID(q quals) (Node, error) {
	a := p.next()
	var (
		n   Node
		err error
	)
	switch {
	case q.typ == "net" || q.implied && a.kind == tWord && strings.Contains(a.text, "/"):
		n, err = p.parseNet(a, q)
	case q.typ == "host":
		n, err = p.parseHost(a, q)
	case q.typ == "port":
		var v uint64
		if v, err = parseUint(a, 65535); err != nil {
			return nil, p.errAt(a, `a port number (0-65535) `+q.label, "")
		}
		n = Port{Port: uint16(v), Dir: q.dir}
	default:
		n, err = p.parsePortRange(a, q)
	}
	if err != nil {
		return nil, err
	}
	if q.proto == nil {
		return p.node(n)
	}
	if _, err := p.node(n); err != nil {
		return nil, err
	}
	return p.both(q.proto, n)
}

func (p *parser) parseHost(a token, q quals) (Node, error) {
	addr, err := parseAddr(a)
	if err != nil {
		return nil, p.errAt(a, `an IP address `+q.label, err.Error())
	}
	return Host{Addr: addr, Dir: q.dir}, nil
}

func (p *parser) parsePortRange(a token, q quals) (Node, error) {
	lo, hi, ok := strings.Cut(a.text, "-")
	l, err1 := parseUint(token{kind: a.kind, text: lo}, 65535)
	h, err2 := parseUint(token{kind: a.kind, text: hi}, 65535)
	if !ok || err1 != nil || err2 != nil || h < l {
		return nil, p.errAt(a, `a port range LOW-HIGH (0-65535) `+q.label, "")
	}
	return PortRange{Lo: uint16(l), Hi: uint16(h), Dir: q.dir}, nil
}

// parseTunnel parses the argument of a tunnel term (kw, lower-case).
func (p *parser) parseTunnel(kw string) (Node, error) {
	a := p.next()
	switch kw {
	case "tunnel-id":
		n, err := parseUint(a, 1<<32-1)
		if err != nil {
			return nil, p.errAt(a, `a tunnel identifier (VNI, GRE key, ERSPAN session, TEID: 0-4294967295) after "tunnel-id"`, "")
		}
		return p.node(TunnelID{ID: uint32(n)})
	case "tunnel-host":
		addr, err := parseAddr(a)
		if err != nil {
			return nil, p.errAt(a, `an IP address after "tunnel-host"`, err.Error())
		}
		return p.node(TunnelHost{Addr: addr})
	}
	if a.kind == tWord && strings.EqualFold(a.text, "any") {
		return p.node(Tunnel{})
	}
	if typ, ok := flow.ParseTunnelType(strings.ToLower(a.text)); ok && a.kind == tWord {
		return p.node(Tunnel{Type: typ})
	}
	return nil, p.errAt(a, `a tunnel type (ipip, gre, erspan1, erspan2, erspan3, vxlan, geneve, gtpu, teredo) or "any" after "tunnel"`, "")
}

func protoWord(t token) (Proto, bool) {
	if t.kind != tWord {
		return Proto{}, false
	}
	switch strings.ToLower(t.text) {
	case "tcp":
		return Proto{Proto: flow.ProtoTCP}, true
	case "udp":
		return Proto{Proto: flow.ProtoUDP}, true
	case "icmp":
		return Proto{Proto: flow.ProtoICMP, ICMP: true}, true
	case "icmp6":
		return Proto{Proto: flow.ProtoICMPv6}, true
	case "sctp":
		return Proto{Proto: flow.ProtoSCTP}, true
	}
	return Proto{}, false
}

func parseUint(t token, max uint64) (uint64, error) {
	if t.kind != tWord {
		return 0, ErrSyntax
	}
	n, err := strconv.ParseUint(t.text, 10, 64)
	if err != nil || n > max {
		return 0, ErrSyntax
	}
	return n, nil
}

func parseAddr(t token) (netip.Addr, error) {
	if t.kind != tWord {
		return netip.Addr{}, errors.New("missing address")
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil {
		return netip.Addr{}, errors.New("not an IPv4 or IPv6 address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("zoned addresses are not supported")
	}
	return a.Unmap(), nil
}

func (p *parser) parseNet(a token, q quals) (Node, error) {
	if a.kind == tWord && strings.Contains(a.text, "/") {
		pf, err := netip.ParsePrefix(a.text)
		if err != nil || pf.Addr().Zone() != "" {
			return nil, p.errAt(a, `a prefix such as 10.0.0.0/8 or 2001:db8::/32 `+q.label, "")
		}
		if pf.Addr().Is4In6() && pf.Bits() >= 96 {
			pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-96)
		}
		return Net{Prefix: pf.Masked(), Dir: q.dir}, nil
	}
	addr, err := parseAddr(a)
	if err != nil {
		return nil, p.errAt(a, `a prefix (ADDR/BITS or ADDR mask MASK) `+q.label, err.Error())
	}
	m := p.next()
	if !p.isWord(m, "mask") {
		return nil, p.errAt(m, `"mask" after "net `+a.text+`" (or write ADDR/BITS)`, "")
	}
	mt := p.next()
	mask, err := parseAddr(mt)
	if err != nil {
		return nil, p.errAt(mt, `a netmask after "mask"`, err.Error())
	}
	if mask.Is4() != addr.Is4() {
		return nil, p.errAt(mt, `a netmask of the address's family`, "")
	}
	bits, ok := maskBits(mask.AsSlice())
	if !ok {
		return nil, p.errAt(mt, `a contiguous netmask`, "")
	}
	return Net{Prefix: netip.PrefixFrom(addr, bits).Masked(), Dir: q.dir}, nil
}

func maskBits(b []byte) (int, bool) {
	bits := 0
	seenZero := false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return 0, false
				}
				bits++
			} else {
				seenZero = true
			}
		}
	}
	return bits, true
}

const timeExpected = `a time (RFC 3339, YYYY-MM-DD, unix seconds, "now" or DURATION "ago")`

func (p *parser) parseTime(kw string) (time.Time, error) {
	t := p.next()
	if t.kind != tWord {
		return time.Time{}, p.errAt(t, timeExpected+` after "`+kw+`"`, "")
	}
	var ts time.Time
	switch {
	case strings.EqualFold(t.text, "now"):
		ts = p.now
	case p.isWord(p.peek(), "ago"):
		d, ok := parseDuration(t.text)
		if !ok {
			return time.Time{}, p.errAt(t, `a duration such as 5m, 2h or 3d before "ago"`, "")
		}
		p.next()
		ts = p.now.Add(-d)
	default:
		var ok bool
		ts, ok = parseAbsTime(t.text)
		if !ok {
			return time.Time{}, p.errAt(t, timeExpected+` after "`+kw+`"`, "")
		}
	}
	if ts.Before(time.Unix(0, 0)) || !ts.Before(maxTime) {
		return time.Time{}, p.errAt(t, "a time between 1970 and 2200", "")
	}
	return ts, nil
}

func parseDuration(s string) (time.Duration, bool) {
	if n := len(s); n >= 2 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseUint(s[:n-1], 10, 32)
		if err != nil {
			return 0, false
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		if v > uint64(math.MaxInt64/int64(unit)) {
			return 0, false
		}
		return time.Duration(v) * unit, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

func parseAbsTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	// Unix seconds with an optional fraction.
	ip, fp, hasFrac := strings.Cut(s, ".")
	if ip == "" || len(ip) > 11 || (hasFrac && (fp == "" || len(fp) > 9)) {
		return time.Time{}, false
	}
	sec, err := strconv.ParseUint(ip, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec uint64
	if hasFrac {
		nsec, err = strconv.ParseUint(fp, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		for i := len(fp); i < 9; i++ {
			nsec *= 10
		}
	}
	return time.Unix(int64(sec), int64(nsec)), true
}

// ParseTime parses one time value as the query language writes it after
// "before" or "after": RFC 3339, YYYY-MM-DD, unix seconds[.frac], "now" or
// "DURATION ago" (relative to now). Errors wrap ErrSyntax.
func ParseTime(s string, now time.Time) (time.Time, error) {
	p := &parser{src: s, toks: lex(s), now: now, cfg: DefaultConfig()}
	ts, err := p.parseTime("time")
	if err != nil {
		return time.Time{}, err
	}
	if t := p.peek(); t.kind != tEOF {
		return time.Time{}, p.errAt(t, "end of time value", "")
	}
	return ts, nil
}
