// Package intel matches flows against threat intelligence feeds: IPs,
// CIDRs, domains (a domain indicator matches its subdomains too), JA4 and
// JA3 fingerprints and TLS server names, from plain lists, CSV and STIX
// 2.1 bundles. Each feed is reloaded when its file changes; a feed that
// does not parse is rejected with an error naming the line or object, and
// its previous version stays in force. Matches are labelled on the flow
// (flow.ThreatMatch → threat.indicator.*, threat.feed.name).
package intel

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tapir-sensor/tapir/collector/enrich/watch"
	"github.com/tapir-sensor/tapir/flow"
)

// Config configures the intel enricher.
type Config struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// Feeds are the indicator files.
	Feeds []FeedConfig `yaml:"feeds"`
	// ReloadInterval is how often feed files are checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// FeedConfig is one feed.
type FeedConfig struct {
	// Name is threat.feed.name (default: the file's base name).
	Name string `yaml:"name"`
	// File is the feed's path.
	File string `yaml:"file"`
	// Format is plain, csv or stix (default: by extension, .csv → csv,
	// .json → stix, else plain).
	Format string `yaml:"format"`
	// Type is the indicator type of a plain list (ip, cidr, domain, ja4,
	// ja3, sni; default: guessed per line among ip, cidr, domain) and the
	// default type of CSV rows without one.
	Type string `yaml:"type"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{ReloadInterval: 30 * time.Second} }

// ErrInvalid wraps configuration errors.
var ErrInvalid = errors.New("invalid intel config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	names := map[string]bool{}
	for i := range c.Feeds {
		f := &c.Feeds[i]
		if f.File == "" {
			return fmt.Errorf("%w: feeds[%d]: file is empty", ErrInvalid, i)
		}
		if n := f.name(); names[n] {
			return fmt.Errorf("%w: feeds[%d]: duplicate name %q", ErrInvalid, i, n)
		} else {
			names[n] = true
		}
		switch f.format() {
		case "plain", "csv", "stix":
		default:
			return fmt.Errorf("%w: feeds[%d]: format %q (plain, csv or stix)", ErrInvalid, i, f.Format)
		}
		if f.Type != "" {
			if _, err := normalize(f.Type, sample(f.Type)); err != nil {
				return fmt.Errorf("%w: feeds[%d]: type %q", ErrInvalid, i, f.Type)
			}
		}
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("%w: negative reload_interval", ErrInvalid)
	}
	return nil
}

func sample(typ string) string {
	switch strings.ToLower(typ) {
	case TypeCIDR:
		return "10.0.0.0/8"
	case TypeJA3:
		return strings.Repeat("0", 32)
	case "url":
		return "http://example.com/"
	case TypeIP, "ipv4-addr", "ipv6-addr", "ipv4", "ipv6", "ip-dst", "ip-src", "auto", "":
		return "10.0.0.1"
	}
	return "example.com"
}

func (f *FeedConfig) name() string {
	if f.Name != "" {
		return f.Name
	}
	return filepath.Base(f.File)
}

func (f *FeedConfig) format() string {
	if f.Format != "" {
		return f.Format
	}
	switch strings.ToLower(filepath.Ext(f.File)) {
	case ".csv":
		return "csv"
	case ".json":
		return "stix"
	}
	return "plain"
}

// ParseFeed parses a feed's bytes in the given format.
func ParseFeed(format, typ string, raw []byte, now time.Time) ([]Indicator, int, error) {
	switch format {
	case "csv":
		ins, err := ParseCSV(bytes.NewReader(raw), typ)
		return ins, 0, err
	case "stix":
		return ParseSTIX(bytes.NewReader(raw), now)
	default:
		ins, err := ParsePlain(bytes.NewReader(raw), typ)
		return ins, 0, err
	}
}

// compiled is one feed ready for matching (immutable).
type compiled struct {
	name    string
	ips     map[netip.Addr]*Indicator
	cidrLen []int // present prefix lengths (+1000 for IPv6), longest first
	cidrs   map[netip.Prefix]*Indicator
	domains map[string]*Indicator
	snis    map[string]*Indicator
	ja4     map[string]*Indicator
	ja3     map[string]*Indicator
	count   int
	skipped int
}

func compile(name string, ins []Indicator) *compiled {
	c := &compiled{name: name, ips: map[netip.Addr]*Indicator{}, cidrs: map[netip.Prefix]*Indicator{},
		domains: map[string]*Indicator{}, snis: map[string]*Indicator{}, ja4: map[string]*Indicator{}, ja3: map[string]*Indicator{}}
	lens := map[int]bool{}
	for i := range ins {
		in := &ins[i]
		switch in.Type {
		case TypeIP:
			c.ips[netip.MustParseAddr(in.Value)] = in
		case TypeCIDR:
			p := netip.MustParsePrefix(in.Value)
			c.cidrs[p] = in
			l := p.Bits()
			if p.Addr().Is6() {
				l += 1000
			}
			lens[l] = true
		case TypeDomain:
			c.domains[in.Value] = in
		case TypeSNI:
			c.snis[in.Value] = in
		case TypeJA4:
			c.ja4[in.Value] = in
		case TypeJA3:
			c.ja3[in.Value] = in
		}
	}
	for l := range lens {
		c.cidrLen = append(c.cidrLen, l)
	}
	slices.Sort(c.cidrLen)
	slices.Reverse(c.cidrLen)
	c.count = len(ins)
	return c
}

func (c *compiled) ip(a netip.Addr) *Indicator {
	if in := c.ips[a]; in != nil {
		return in
	}
	off := 0
	if a.Is6() {
		off = 1000
	}
	for _, l := range c.cidrLen {
		if l/1000*1000 != off {
			continue
		}
		p, _ := a.Prefix(l - off)
		if in := c.cidrs[p]; in != nil {
			return in
		}
	}
	return nil
}

// suffix finds d or its closest parent domain in m.
func suffix(m map[string]*Indicator, d string) *Indicator {
	if len(m) == 0 || d == "" {
		return nil
	}
	for {
		if in := m[d]; in != nil {
			return in
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return nil
		}
		d = d[i+1:]
	}
}

// feed is a configured feed with its current compiled version.
type feed struct {
	cfg FeedConfig
	cur atomic.Pointer[compiled]
	w   *watch.Watcher
}

// Intel is the threat intelligence enricher. Enrich is safe for
// concurrent use; reloads swap a feed atomically.
type Intel struct {
	cfg   Config
	log   *slog.Logger
	feeds []*feed
	now   func() time.Time
}

// New loads every feed; a feed that fails to load is an error here (at
// reload time it only keeps its previous version). It starts nothing.
func New(cfg Config, log *slog.Logger) (*Intel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Intel{cfg: cfg, log: log, now: time.Now}
	for _, fc := range cfg.Feeds {
		f := &feed{cfg: fc}
		if err := x.load(f); err != nil {
			return nil, err
		}
		f.w = watch.New([]string{fc.File}, cfg.ReloadInterval, func() error { return x.load(f) }, log.With("feed", fc.name()))
		x.feeds = append(x.feeds, f)
	}
	return x, nil
}

func (x *Intel) load(f *feed) error {
	raw, err := os.ReadFile(f.cfg.File)
	if err != nil {
		return fmt.Errorf("intel feed %s: %w", f.cfg.name(), err)
	}
	ins, skipped, err := ParseFeed(f.cfg.format(), f.cfg.Type, raw, x.now())
	if err != nil {
		return fmt.Errorf("intel feed %s (%s): %w", f.cfg.name(), f.cfg.File, err)
	}
	c := compile(f.cfg.name(), ins)
	c.skipped = skipped
	f.cur.Store(c)
	x.log.Info("intel feed loaded", "feed", c.name, "indicators", c.count, "skipped", skipped)
	return nil
}

// Name is "intel".
func (x *Intel) Name() string { return "intel" }

// Start watches the feed files.
func (x *Intel) Start() error {
	for _, f := range x.feeds {
		f.w.Start()
	}
	return nil
}

// Stop ends the watchers. Idempotent.
func (x *Intel) Stop() {
	for _, f := range x.feeds {
		f.w.Stop()
	}
}

// Check reloads every changed feed now, returning the load errors.
func (x *Intel) Check() error {
	var errs error
	for _, f := range x.feeds {
		_, err := f.w.Check()
		errs = errors.Join(errs, err)
	}
	return errs
}

// FeedStats describes a feed's version in force.
type FeedStats struct {
	Name                string
	Indicators, Skipped int
	Reloads, Failures   uint64
}

// Feeds returns the feeds' state.
func (x *Intel) Feeds() []FeedStats {
	var out []FeedStats
	for _, f := range x.feeds {
		c := f.cur.Load()
		out = append(out, FeedStats{Name: c.name, Indicators: c.count, Skipped: c.skipped,
			Reloads: f.w.Reloads.Load(), Failures: f.w.Failures.Load()})
	}
	return out
}

// Enrich appends a flow.ThreatMatch to x.Threats for every indicator the
// flow matches (once per feed and indicator). It reports whether any did.
func (x *Intel) Enrich(r *flow.Record, e *flow.Enrichment) (bool, error) {
	if r.Tuple.Family == flow.FamilyLink || len(x.feeds) == 0 {
		return false, nil
	}
	src, dst := r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family)
	var sni, host, qname, ja4, ja3 string
	if a := r.App; a != nil {
		if a.TLS != nil {
			sni, ja4, ja3 = strings.ToLower(a.TLS.ServerName), strings.ToLower(a.TLS.JA4), strings.ToLower(a.TLS.JA3)
		}
		if a.HTTP != nil {
			host = strings.ToLower(a.HTTP.Host)
			if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[i:], "]") {
				host = host[:i]
			}
		}
		if a.DNS != nil {
			qname = strings.ToLower(strings.TrimSuffix(a.DNS.QueryName, "."))
		}
	}
	n0 := len(e.Threats)
	for _, f := range x.feeds {
		c := f.cur.Load()
		add := func(in *Indicator, field, atomic string) {
			if in == nil {
				return
			}
			for _, m := range e.Threats[n0:] {
				if m.Feed == c.name && m.Indicator == in.Value && m.Type == stixType(in, atomic) {
					return
				}
			}
			e.Threats = append(e.Threats, flow.ThreatMatch{Feed: c.name, Type: stixType(in, atomic), Indicator: in.Value,
				Field: field, Atomic: atomic, Description: in.Description, Confidence: in.Confidence, ID: in.ID})
		}
		if len(c.ips) > 0 || len(c.cidrLen) > 0 {
			if in := c.ip(dst); in != nil {
				add(in, "destination.ip", dst.String())
			}
			if in := c.ip(src); in != nil {
				add(in, "source.ip", src.String())
			}
		}
		if len(c.domains) > 0 {
			if in := suffix(c.domains, e.Domain); in != nil {
				add(in, "destination.domain", e.Domain)
			}
			if in := suffix(c.domains, sni); in != nil {
				add(in, "tls.client.server_name", sni)
			}
			if in := suffix(c.domains, host); in != nil {
				add(in, "url.domain", host)
			}
			if in := suffix(c.domains, qname); in != nil {
				add(in, "dns.question.name", qname)
			}
		}
		if in := suffix(c.snis, sni); in != nil {
			add(in, "tls.client.server_name", sni)
		}
		if ja4 != "" {
			if in := c.ja4[ja4]; in != nil {
				add(in, "tls.client.ja4", ja4)
			}
		}
		if ja3 != "" {
			if in := c.ja3[ja3]; in != nil {
				add(in, "tls.client.ja3", ja3)
			}
		}
	}
	return len(e.Threats) > n0, nil
}

// stixType is the ECS/STIX name of an indicator's type.
func stixType(in *Indicator, atomic string) string {
	switch in.Type {
	case TypeIP, TypeCIDR:
		if strings.Contains(atomic, ":") {
			return "ipv6-addr"
		}
		return "ipv4-addr"
	case TypeDomain:
		return "domain-name"
	}
	return in.Type
}
