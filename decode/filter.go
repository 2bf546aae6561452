package decode

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/tapir-sensor/tapir/flow"
)

// ErrBadTunnelFilter is wrapped by ParseTunnelFilter's errors.
var ErrBadTunnelFilter = errors.New("bad tunnel filter")

// TunnelFilter selects packets by their tunnel chain after decoding,
// where a capture filter (classic BPF) cannot: by tunnel type at any
// level, by VXLAN/Geneve VNI, GRE key, ERSPAN session ID or GTP-U TEID,
// by tunnel endpoint. Its terms are the query language's:
//
//	expr  = or
//	or    = and { "or" and }
//	and   = unary { "and" unary }
//	unary = "not" unary | "(" expr ")" | term
//	term  = "tunnel" (TYPE | "erspan" | "any") | "tunnel-id" N | "tunnel-host" ADDR
//	TYPE  = ipip | gre | erspan1 | erspan2 | erspan3 | vxlan | geneve | gtpu | teredo
//
// ("&&", "||" and "!" are accepted for and, or and not.) A term is true
// when one level of the packet's chain, the mirror level included, has
// that type, identifier or outer address; "erspan" is any ERSPAN type,
// "any" any tunnel. A tunnel whose payload the decoder could not take
// apart (ARP over VXLAN) is a level too, with the tunnel's own addresses.
// A TunnelFilter is immutable and safe for concurrent use; Match does not
// allocate.
type TunnelFilter struct {
	root filterNode
	expr string
}

// String returns the expression the filter was parsed from.
func (f *TunnelFilter) String() string { return f.expr }

// Match reports whether the decoded packet p passes the filter.
func (f *TunnelFilter) Match(p *Packet) bool { return f.root.match(p) }

// Keep reports whether the sensor keeps p: always without a
// TunnelFilter, else when p passes it.
func (o *Options) Keep(p *Packet) bool {
	return o.TunnelFilter == nil || o.TunnelFilter.root.match(p)
}

// filterNode is one node of a parsed filter.
type filterNode interface{ match(p *Packet) bool }

type (
	andNode  struct{ a, b filterNode }
	orNode   struct{ a, b filterNode }
	notNode  struct{ a filterNode }
	typeNode struct {
		t      flow.TunnelType
		erspan bool // any ERSPAN type
	}
	idNode   struct{ id uint32 }
	hostNode struct{ addr flow.Addr }
)

func (n andNode) match(p *Packet) bool { return n.a.match(p) && n.b.match(p) }
func (n orNode) match(p *Packet) bool  { return n.a.match(p) || n.b.match(p) }
func (n notNode) match(p *Packet) bool { return !n.a.match(p) }

func (n typeNode) match(p *Packet) bool {
	is := func(t flow.TunnelType) bool {
		switch {
		case n.erspan:
			return isERSPAN(t)
		case n.t == flow.TunnelNone:
			return t != flow.TunnelNone
		}
		return t == n.t
	}
	for i := range p.Tunnels[:p.NTunnels] {
		if is(p.Tunnels[i].Type) {
			return true
		}
	}
	return p.OpaqueTunnel != flow.TunnelNone && is(p.OpaqueTunnel)
}

func (n idNode) match(p *Packet) bool {
	for i := range p.Tunnels[:p.NTunnels] {
		if l := &p.Tunnels[i]; l.HasID && l.ID == n.id {
			return true
		}
	}
	return p.OpaqueTunnel != flow.TunnelNone && p.OpaqueHasID && p.OpaqueID == n.id
}

func (n hostNode) match(p *Packet) bool {
	for i := range p.Tunnels[:p.NTunnels] {
		if l := &p.Tunnels[i]; l.Src == n.addr || l.Dst == n.addr {
			return true
		}
	}
	return p.OpaqueTunnel != flow.TunnelNone && (p.Tuple.Src == n.addr || p.Tuple.Dst == n.addr)
}

// ParseTunnelFilter parses a tunnel filter expression (see
// TunnelFilter). An empty expression gives nil: no filter.
func ParseTunnelFilter(expr string) (*TunnelFilter, error) {
	toks := tokenize(expr)
	if len(toks) == 0 {
		return nil, nil //nolint:nilnil // no expression, no filter
	}
	ps := &filterParser{toks: toks}
	root, err := ps.or()
	if err == nil && ps.pos < len(ps.toks) {
		err = fmt.Errorf("unexpected %q after a complete expression", ps.toks[ps.pos])
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadTunnelFilter, expr, err)
	}
	return &TunnelFilter{root: root, expr: strings.Join(toks, " ")}, nil
}

// tokenize splits an expression into words, parentheses and the
// operators "&&", "||" and "!".
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '(' || c == ')' || c == '!':
			toks = append(toks, string(c))
			i++
		case (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c:
			toks = append(toks, s[i:i+2])
			i += 2
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("()!", rune(s[j])) &&
				!strings.HasPrefix(s[j:], "&&") && !strings.HasPrefix(s[j:], "||") {
				j++
			}
			toks = append(toks, strings.ToLower(s[i:j]))
			i = j
		}
	}
	return toks
}

// filterParser is a recursive-descent parser over tokens.
type filterParser struct {
	toks []string
	pos  int
}

// peek returns the next token, "" at the end.
func (ps *filterParser) peek() string {
	if ps.pos < len(ps.toks) {
		return ps.toks[ps.pos]
	}
	return ""
}

// next consumes and returns the next token, "" at the end.
func (ps *filterParser) next() string {
	t := ps.peek()
	if t != "" {
		ps.pos++
	}
	return t
}

func (ps *filterParser) or() (filterNode, error) {
	n, err := ps.and()
	for err == nil && (ps.peek() == "or" || ps.peek() == "||") {
		ps.next()
		var b filterNode
		if b, err = ps.and(); err == nil {
			n = orNode{n, b}
		}
	}
	return n, err
}

func (ps *filterParser) and() (filterNode, error) {
	n, err := ps.unary()
	for err == nil && (ps.peek() == "and" || ps.peek() == "&&") {
		ps.next()
		var b filterNode
		if b, err = ps.unary(); err == nil {
			n = andNode{n, b}
		}
	}
	return n, err
}

func (ps *filterParser) unary() (filterNode, error) {
	switch t := ps.next(); t {
	case "not", "!":
		n, err := ps.unary()
		return notNode{n}, err
	case "(":
		n, err := ps.or()
		if err != nil {
			return nil, err
		}
		if c := ps.next(); c != ")" {
			return nil, fmt.Errorf("missing \")\" (found %q)", c)
		}
		return n, nil
	case "":
		return nil, errors.New(`expression ends where a term was expected ("tunnel", "tunnel-id", "tunnel-host", "not" or "(")`)
	default:
		return ps.term(t)
	}
}

// term parses the argument of keyword kw.
func (ps *filterParser) term(kw string) (filterNode, error) {
	arg := ps.next()
	if arg == "" && (kw == "tunnel" || kw == "tunnel-id" || kw == "tunnel-host") {
		return nil, fmt.Errorf("%q needs an argument", kw)
	}
	switch kw {
	case "tunnel":
		switch arg {
		case "any":
			return typeNode{}, nil
		case "erspan":
			return typeNode{erspan: true}, nil
		}
		t, ok := flow.ParseTunnelType(arg)
		if !ok {
			return nil, fmt.Errorf("tunnel %q: want ipip, gre, erspan, erspan1, erspan2, erspan3, vxlan, geneve, gtpu, teredo or any", arg)
		}
		return typeNode{t: t}, nil
	case "tunnel-id":
		n, err := strconv.ParseUint(arg, 0, 32)
		if err != nil {
			return nil, fmt.Errorf("tunnel-id %q: want a number from 0 to 4294967295 (VNI, GRE key, ERSPAN session ID or TEID)", arg)
		}
		return idNode{uint32(n)}, nil
	case "tunnel-host":
		a, err := netip.ParseAddr(arg)
		if err != nil {
			return nil, fmt.Errorf("tunnel-host %q: want an IPv4 or IPv6 address", arg)
		}
		addr, _ := flow.AddrFromNetip(a)
		return hostNode{addr}, nil
	}
	return nil, fmt.Errorf("unknown term %q: want \"tunnel\", \"tunnel-id\", \"tunnel-host\", \"not\" or \"(\"", kw)
}
