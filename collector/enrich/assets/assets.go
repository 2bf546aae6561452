// Package assets tags flow ends with the asset inventory: a YAML or CSV
// file mapping CIDRs and exact addresses to name, site, owner, role and
// criticality (the longest prefix wins). Internal addresses (inventory
// entries, and the configured internal networks) get an internal location,
// their site's, instead of GeoIP. The file is reloaded when it changes; a
// file that fails to parse leaves the previous inventory in force.
package assets

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/collector/enrich/watch"
	"github.com/tapir-sensor/tapir/flow"
)

// Config configures the asset enricher.
type Config struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// File is the inventory: .yaml/.yml or .csv (empty: internal networks only).
	File string `yaml:"file"`
	// InternalNetworks are internal even without an inventory entry
	// (default: RFC 1918, RFC 6598, loopback, link-local, RFC 4193).
	InternalNetworks []string `yaml:"internal_networks"`
	// DefaultSite names the location of internal addresses whose entry has
	// no site.
	DefaultSite string `yaml:"default_site"`
	// ReloadInterval is how often the file is checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		InternalNetworks: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128"},
		DefaultSite:      "internal",
		ReloadInterval:   30 * time.Second,
	}
}

var (
	// ErrInvalid wraps configuration errors.
	ErrInvalid = errors.New("invalid assets config")
	// ErrBadInventory wraps inventory file errors.
	ErrBadInventory = errors.New("bad asset inventory")
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	for _, n := range c.InternalNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("%w: internal_networks: %v", ErrInvalid, err)
		}
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("%w: negative reload_interval", ErrInvalid)
	}
	return nil
}

// Entry is one inventory line.
type Entry struct {
	CIDR        string `yaml:"cidr"`
	IP          string `yaml:"ip"`
	Name        string `yaml:"name"`
	Site        string `yaml:"site"`
	Owner       string `yaml:"owner"`
	Role        string `yaml:"role"`
	Criticality string `yaml:"criticality"`
	// External marks an inventory entry that is not internal (a partner
	// or cloud range): it is tagged but keeps its GeoIP location.
	External bool `yaml:"external"`
}

// Site is a location of internal addresses.
type Site struct {
	City    string  `yaml:"city"`
	Country string  `yaml:"country_iso_code"`
	Lat     float64 `yaml:"lat"`
	Lon     float64 `yaml:"lon"`
}

// File is the YAML inventory.
type File struct {
	Sites  map[string]Site `yaml:"sites"`
	Assets []Entry         `yaml:"assets"`
}

type table struct {
	lens   []int // prefix lengths present, longest first
	byPfx  map[netip.Prefix]*flow.Asset
	geo    map[*flow.Asset]*flow.Geo
	inside []netip.Prefix
	defA   *flow.Asset
	defG   *flow.Geo
}

// Enricher tags both ends with their asset. Enrich and Lookup are safe for
// concurrent use.
type Enricher struct {
	cfg Config
	t   atomic.Pointer[table]
	w   *watch.Watcher
}

// New loads the inventory. It starts nothing.
func New(cfg Config, log *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg}
	if err := e.load(); err != nil {
		return nil, err
	}
	var paths []string
	if cfg.File != "" {
		paths = []string{cfg.File}
	}
	e.w = watch.New(paths, cfg.ReloadInterval, e.load, log)
	return e, nil
}

func (e *Enricher) load() error {
	var f File
	if e.cfg.File != "" {
		raw, err := os.ReadFile(e.cfg.File)
		if err != nil {
			return fmt.Errorf("assets: %w", err)
		}
		if f, err = Parse(e.cfg.File, raw); err != nil {
			return fmt.Errorf("assets: %w", err)
		}
	}
	t, err := build(&f, &e.cfg)
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	e.t.Store(t)
	return nil
}

// Parse reads an inventory: YAML (name ending .yaml/.yml) or CSV with a
// header naming the columns cidr (or ip), name, site, owner, role,
// criticality, external.
func Parse(name string, raw []byte) (File, error) {
	var f File
	if strings.HasSuffix(name, ".csv") {
		return parseCSV(name, raw)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err != io.EOF {
		return f, fmt.Errorf("%w: %s: %v", ErrBadInventory, name, err)
	}
	return f, nil
}

func parseCSV(name string, raw []byte) (File, error) {
	var f File
	cr := csv.NewReader(bytes.NewReader(raw))
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	rows, err := cr.ReadAll()
	if err != nil {
		return f, fmt.Errorf("%w: %s: %v", ErrBadInventory, name, err)
	}
	if len(rows) == 0 {
		return f, nil
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	_, hasC := col["cidr"]
	_, hasI := col["ip"]
	if !hasC && !hasI {
		return f, fmt.Errorf("%w: %s: header needs a cidr or ip column", ErrBadInventory, name)
	}
	get := func(r []string, k string) string {
		if i, ok := col[k]; ok && i < len(r) {
			return strings.TrimSpace(r[i])
		}
		return ""
	}
	for _, r := range rows[1:] {
		f.Assets = append(f.Assets, Entry{CIDR: get(r, "cidr"), IP: get(r, "ip"), Name: get(r, "name"), Site: get(r, "site"),
			Owner: get(r, "owner"), Role: get(r, "role"), Criticality: get(r, "criticality"), External: get(r, "external") == "true"})
	}
	return f, nil
}

func build(f *File, cfg *Config) (*table, error) {
	t := &table{byPfx: map[netip.Prefix]*flow.Asset{}, geo: map[*flow.Asset]*flow.Geo{}}
	siteGeo := map[string]*flow.Geo{}
	geoOf := func(site string) *flow.Geo {
		if g, ok := siteGeo[site]; ok {
			return g
		}
		g := &flow.Geo{Name: site}
		if s, ok := f.Sites[site]; ok {
			g.CityName, g.CountryISOCode = s.City, s.Country
			g.Lat, g.Lon, g.HasLocation = s.Lat, s.Lon, s.Lat != 0 || s.Lon != 0
		}
		siteGeo[site] = g
		return g
	}
	lens := map[int]bool{}
	for i, en := range f.Assets {
		var p netip.Prefix
		var err error
		switch {
		case en.CIDR != "":
			p, err = netip.ParsePrefix(en.CIDR)
		case en.IP != "":
			var a netip.Addr
			if a, err = netip.ParseAddr(en.IP); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		default:
			err = errors.New("neither cidr nor ip")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrBadInventory, i+1, err)
		}
		p = p.Masked()
		site := en.Site
		if site == "" && !en.External {
			site = cfg.DefaultSite
		}
		a := &flow.Asset{Name: en.Name, Site: site, Owner: en.Owner, Role: en.Role, Criticality: en.Criticality, Internal: !en.External}
		t.byPfx[p] = a
		if a.Internal {
			t.geo[a] = geoOf(site)
		}
		lens[p.Bits()+boolInt(p.Addr().Is6())*1000] = true
	}
	for l := range lens {
		t.lens = append(t.lens, l)
	}
	slices.Sort(t.lens)
	slices.Reverse(t.lens)
	for _, n := range cfg.InternalNetworks {
		t.inside = append(t.inside, netip.MustParsePrefix(n))
	}
	t.defA = &flow.Asset{Site: cfg.DefaultSite, Internal: true}
	t.defG = geoOf(cfg.DefaultSite)
	return t, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Lookup returns the asset of a and its internal location (nil for an
// external entry), or nils when a is neither in the inventory nor in an
// internal network.
func (e *Enricher) Lookup(a netip.Addr) (*flow.Asset, *flow.Geo) {
	t := e.t.Load()
	a = a.Unmap()
	v6 := boolInt(a.Is6()) * 1000
	for _, l := range t.lens {
		if l/1000*1000 != v6 {
			continue
		}
		p, _ := a.Prefix(l - v6)
		if as, ok := t.byPfx[p]; ok {
			return as, t.geo[as]
		}
	}
	for _, p := range t.inside {
		if p.Contains(a) {
			return t.defA, t.defG
		}
	}
	return nil, nil
}

// Name is "assets".
func (e *Enricher) Name() string { return "assets" }

// Start watches the inventory file.
func (e *Enricher) Start() error { e.w.Start(); return nil }

// Stop ends the watcher. Idempotent.
func (e *Enricher) Stop() { e.w.Stop() }

// Watcher exposes the file watcher.
func (e *Enricher) Watcher() *watch.Watcher { return e.w }

// Enrich tags both ends; it reports whether either is a known asset.
func (e *Enricher) Enrich(r *flow.Record, x *flow.Enrichment) (bool, error) {
	if r.Tuple.Family == flow.FamilyLink {
		return false, nil
	}
	hit := false
	for i, ep := range [2]*flow.EndpointEnrichment{&x.Source, &x.Destination} {
		a := r.Tuple.Src
		if i == 1 {
			a = r.Tuple.Dst
		}
		as, g := e.Lookup(a.Netip(r.Tuple.Family))
		if as != nil {
			ep.Asset, hit = as, true
			if g != nil {
				ep.Geo = g
			}
		}
	}
	return hit, nil
}
