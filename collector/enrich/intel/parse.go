package intel

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Indicator types.
const (
	TypeIP     = "ip"     // an address (exact)
	TypeCIDR   = "cidr"   // a network
	TypeDomain = "domain" // a domain and its subdomains
	TypeJA4    = "ja4"
	TypeJA3    = "ja3"
	TypeSNI    = "sni" // a TLS server name (and its subdomains)
)

// Indicator is one entry of a feed.
type Indicator struct {
	Type        string
	Value       string // normalized: address, masked CIDR, lower-case domain, fingerprint
	Description string
	Confidence  string
	ID          string
}

var (
	// ErrMalformed wraps every feed parse error.
	ErrMalformed = errors.New("malformed feed")
	// ErrUnsupported marks a valid STIX pattern tapir cannot match (AND,
	// other object types); such indicators are skipped and counted.
	ErrUnsupported = errors.New("unsupported pattern")
)

// maxLine bounds one line of a list or CSV feed.
const maxLine = 64 << 10

// normalize checks and canonicalizes a value of type typ ("" guesses ip,
// cidr or domain).
func normalize(typ, v string) (Indicator, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Indicator{}, errors.New("empty value")
	}
	switch strings.ToLower(typ) {
	case "", "auto":
		if a, err := netip.ParseAddr(v); err == nil {
			return Indicator{Type: TypeIP, Value: a.Unmap().String()}, nil
		}
		if strings.Contains(v, "/") {
			return normalize(TypeCIDR, v)
		}
		return normalize(TypeDomain, v)
	case TypeIP, "ipv4-addr", "ipv6-addr", "ipv4", "ipv6", "ip-dst", "ip-src":
		if strings.Contains(v, "/") {
			return normalize(TypeCIDR, v)
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return Indicator{}, fmt.Errorf("bad address %q", v)
		}
		return Indicator{Type: TypeIP, Value: a.Unmap().String()}, nil
	case TypeCIDR:
		return normalizeCIDR(v)
	case TypeDomain, "domain-name", "hostname", TypeSNI:
		return normalizeDomain(typ, v)
	case TypeJA4:
		if len(v) > 64 || strings.ContainsAny(v, " \t,;") {
			return Indicator{}, fmt.Errorf("bad ja4 %q", v)
		}
		return Indicator{Type: TypeJA4, Value: strings.ToLower(v)}, nil
	case TypeJA3:
		if len(v) != 32 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
			return Indicator{}, fmt.Errorf("bad ja3 %q (want 32 hex digits)", v)
		}
		return Indicator{Type: TypeJA3, Value: strings.ToLower(v)}, nil
	case "url":
		u, err := url.Parse(v)
		if err != nil || u.Hostname() == "" {
			return Indicator{}, fmt.Errorf("bad url %q", v)
		}
		return normalize("", u.Hostname())
	}
	return Indicator{}, fmt.Errorf("unknown indicator type %q", typ)
}

// normalizeCIDR masks a network; a single address becomes an IP
// indicator.
func normalizeCIDR(v string) (Indicator, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return Indicator{}, fmt.Errorf("bad network %q", v)
	}
	p = p.Masked()
	if p.Addr().Is4In6() {
		return Indicator{}, fmt.Errorf("bad network %q", v)
	}
	if p.IsSingleIP() {
		return Indicator{Type: TypeIP, Value: p.Addr().String()}, nil
	}
	return Indicator{Type: TypeCIDR, Value: p.String()}, nil
}

// normalizeDomain lower-cases a domain (or SNI) and drops a trailing dot
// and a leading wildcard label.
func normalizeDomain(typ, v string) (Indicator, error) {
	d := strings.ToLower(strings.TrimSuffix(v, "."))
	d = strings.TrimPrefix(d, "*.")
	if !validDomain(d) {
		return Indicator{}, fmt.Errorf("bad domain %q", v)
	}
	t := TypeDomain
	if strings.EqualFold(typ, TypeSNI) {
		t = TypeSNI
	}
	return Indicator{Type: t, Value: d}, nil
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// ParsePlain reads a list: one value per line, '#' comments, blank lines
// ignored. typ is the type of every value ("" guesses ip, cidr or domain
// per line).
func ParsePlain(r io.Reader, typ string) ([]Indicator, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	var out []Indicator
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		in, err := normalize(typ, s)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, line, err)
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, line+1, err)
	}
	return out, nil
}

// ParseCSV reads a CSV feed with a header naming its columns: indicator
// (or value), type (optional when typ is given), description, confidence,
// id.
func ParseCSV(r io.Reader, typ string) ([]Indicator, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	hdr, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	col := map[string]int{}
	for i, h := range hdr {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	vi, ok := col["indicator"]
	if !ok {
		if vi, ok = col["value"]; !ok {
			return nil, fmt.Errorf("%w: header has no indicator or value column", ErrMalformed)
		}
	}
	ti, hasType := col["type"]
	get := func(rec []string, k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []Indicator
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		line, _ := cr.FieldPos(0)
		if vi >= len(rec) {
			return nil, fmt.Errorf("%w: line %d: no indicator column", ErrMalformed, line)
		}
		t := typ
		if hasType && ti < len(rec) && strings.TrimSpace(rec[ti]) != "" {
			t = strings.TrimSpace(rec[ti])
		}
		in, err := normalize(t, rec[vi])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, line, err)
		}
		in.Description, in.Confidence, in.ID = get(rec, "description"), get(rec, "confidence"), get(rec, "id")
		out = append(out, in)
	}
	return out, nil
}

type stixObject struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Pattern     string          `json:"pattern"`
	PatternType string          `json:"pattern_type"`
	Confidence  json.RawMessage `json:"confidence"`
	Revoked     bool            `json:"revoked"`
	ValidUntil  string          `json:"valid_until"`
}

// ParseSTIX reads a STIX 2.1 bundle. Indicators with pattern_type stix
// whose patterns are observation expressions of '=' comparisons joined by
// OR are taken: ipv4-addr:value, ipv6-addr:value, domain-name:value,
// url:value (its host), network-traffic:dst_ref.value / src_ref.value,
// and tapir's own x-ja4:value, x-ja3:value,
// x-sni:value. Revoked or expired indicators and unsupported patterns are
// skipped (counted in skipped). JSON errors and broken patterns reject the
// whole feed.
func ParseSTIX(r io.Reader, now time.Time) (out []Indicator, skipped int, err error) {
	var b struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil {
		return nil, 0, fmt.Errorf("%w: stix bundle: %v", ErrMalformed, err)
	}
	if b.Type != "bundle" {
		return nil, 0, fmt.Errorf("%w: stix: top-level type %q, want bundle", ErrMalformed, b.Type)
	}
	for i, o := range b.Objects {
		var so stixObject
		if err := json.Unmarshal(o, &so); err != nil {
			return nil, 0, fmt.Errorf("%w: stix object %d: %v", ErrMalformed, i, err)
		}
		if so.Type != "indicator" {
			continue
		}
		if so.PatternType != "" && so.PatternType != "stix" {
			skipped++
			continue
		}
		if so.Revoked {
			skipped++
			continue
		}
		if so.ValidUntil != "" {
			if t, err := time.Parse(time.RFC3339Nano, so.ValidUntil); err == nil && t.Before(now) {
				skipped++
				continue
			}
		}
		terms, err := parsePattern(so.Pattern)
		if errors.Is(err, ErrUnsupported) {
			skipped++
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: stix object %d (%s): %v", ErrMalformed, i, so.ID, err)
		}
		desc := so.Name
		if desc == "" {
			desc = so.Description
		}
		conf := strings.Trim(string(so.Confidence), `"`)
		for _, t := range terms {
			in, err := normalize(t.typ, t.value)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: stix object %d (%s): %v", ErrMalformed, i, so.ID, err)
			}
			in.Description, in.Confidence, in.ID = desc, conf, so.ID
			out = append(out, in)
		}
	}
	return out, skipped, nil
}

type term struct{ typ, value string }

// stixPaths maps supported object paths to indicator types.
var stixPaths = map[string]string{
	"ipv4-addr:value": TypeIP, "ipv6-addr:value": TypeIP, "domain-name:value": TypeDomain, "url:value": "url",
	"network-traffic:dst_ref.value": TypeIP, "network-traffic:src_ref.value": TypeIP,
	"x-ja4:value": TypeJA4, "x-ja3:value": TypeJA3, "x-sni:value": TypeSNI,
}

// parsePattern parses the subset of STIX patterning described at
// ParseSTIX. It returns ErrUnsupported for valid patterns outside it and
// another error for patterns that do not parse.
func parsePattern(p string) ([]term, error) {
	toks, err := lex(p)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("empty pattern")
	}
	pp := &patternParser{toks: toks}
	expectObs := true
	for pp.i < len(toks) {
		t := toks[pp.i]
		switch {
		case t.kind == tokPunct && t.s == "[":
			if !expectObs {
				return nil, fmt.Errorf("unexpected [ at %d", t.pos)
			}
			if err := pp.observation(); err != nil {
				return nil, err
			}
			expectObs = false
		case t.kind == tokWord && !expectObs && (t.s == "OR" || t.s == "AND" || t.s == "FOLLOWEDBY"):
			if t.s != "OR" {
				pp.unsupported = true
			}
			expectObs = true
			pp.i++
		case t.kind == tokWord && !expectObs && (t.s == "WITHIN" || t.s == "REPEATS" || t.s == "START" || t.s == "STOP"):
			// qualifiers: ignore the rest
			pp.i = len(toks)
		default:
			return nil, fmt.Errorf("unexpected %q at %d", t.s, t.pos)
		}
	}
	if expectObs {
		return nil, errors.New("incomplete pattern")
	}
	if pp.unsupported {
		return nil, ErrUnsupported
	}
	return pp.terms, nil
}

// patternParser walks a STIX pattern's tokens, collecting the terms it
// can match and noting what it cannot.
type patternParser struct {
	toks        []token
	i           int // next token
	terms       []term
	unsupported bool // a comparison or operator tapir cannot match
}

// observation parses "[" comparison {(OR | AND) comparison} "]" at the
// current token.
func (pp *patternParser) observation() error {
	pp.i++ // [
	for {
		if err := pp.comparison(); err != nil {
			return err
		}
		if pp.i >= len(pp.toks) {
			return errors.New("unterminated observation")
		}
		n := pp.toks[pp.i]
		pp.i++
		switch {
		case n.kind == tokPunct && n.s == "]":
			return nil
		case n.kind == tokWord && (n.s == "OR" || n.s == "AND"):
			if n.s == "AND" {
				pp.unsupported = true
			}
		default:
			return fmt.Errorf("unexpected %q at %d", n.s, n.pos)
		}
	}
}

// comparison parses "path op value"; only path = 'string' on a known
// path becomes a term.
func (pp *patternParser) comparison() error {
	if pp.i+2 >= len(pp.toks) {
		return errors.New("unterminated observation")
	}
	path, op, val := pp.toks[pp.i], pp.toks[pp.i+1], pp.toks[pp.i+2]
	if path.kind != tokWord || val.kind != tokString && val.kind != tokWord {
		return fmt.Errorf("bad comparison at %d", path.pos)
	}
	if op.kind != tokWord && op.kind != tokPunct {
		return fmt.Errorf("bad operator at %d", op.pos)
	}
	typ, ok := stixPaths[path.s]
	if !ok || op.s != "=" || val.kind != tokString {
		pp.unsupported = true
	} else {
		pp.terms = append(pp.terms, term{typ, val.s})
	}
	pp.i += 3
	return nil
}

const (
	tokWord = iota
	tokString
	tokPunct
)

type token struct {
	kind int
	s    string
	pos  int
}

// lex splits a pattern into words (paths, operators, keywords), quoted
// strings (with \' and \\ escapes) and brackets.
func lex(p string) ([]token, error) {
	var out []token
	for i := 0; i < len(p); {
		c := p[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '[', ']', '(', ')':
			if c == '(' || c == ')' {
				return nil, ErrUnsupported
			}
			out = append(out, token{tokPunct, string(c), i})
			i++
		case '=', '!', '<', '>':
			j := i + 1
			if j < len(p) && p[j] == '=' {
				j++
			}
			out = append(out, token{tokPunct, p[i:j], i})
			i = j
		case '\'':
			var sb strings.Builder
			j := i + 1
			for ; j < len(p); j++ {
				if p[j] == '\\' && j+1 < len(p) {
					j++
					sb.WriteByte(p[j])
					continue
				}
				if p[j] == '\'' {
					break
				}
				sb.WriteByte(p[j])
			}
			if j >= len(p) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{tokString, sb.String(), i})
			i = j + 1
		default:
			j := i
			for j < len(p) && !strings.ContainsRune(" \t\n\r[]()='!<>", rune(p[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			out = append(out, token{tokWord, p[i:j], i})
			i = j
		}
	}
	return out, nil
}
