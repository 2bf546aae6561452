// Package geoip adds location (city, country, coordinates) and autonomous
// system (number, organisation) to both ends of a flow. Location comes
// from MaxMind DB files (MaxMind GeoLite2/GeoIP2 City, IPinfo, or the
// ip-location-db files `make data` fetches); AS data from CSV range files
// (a sorted range table searched by binary search) or MaxMind DB ASN
// files. Files are reloaded when they change on disk; a file that fails to
// load leaves the previous data in force.
package geoip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/tapir-sensor/tapir/collector/enrich/watch"
	"github.com/tapir-sensor/tapir/flow"
)

// City is the GeoIP enricher. Enrich and Lookup are safe for concurrent
// use; a reload swaps the data atomically.
type City struct {
	cfg   Config
	log   *slog.Logger
	files atomic.Pointer[[]*mmdbFile[flow.Geo]]
	w     *watch.Watcher
}

// NewCity opens the files. It starts nothing.
func NewCity(cfg Config, log *slog.Logger) (*City, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &City{cfg: cfg, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.w = watch.New(cfg.Files, cfg.ReloadInterval, c.load, log)
	return c, nil
}

// load opens every file; only when all open does it replace the old set.
func (c *City) load() error {
	var fs []*mmdbFile[flow.Geo]
	for _, p := range c.cfg.Files {
		f, err := openMMDB(p, max(c.cfg.CacheSize, 1), decodeGeo)
		if err != nil {
			for _, o := range fs {
				o.close()
			}
			return fmt.Errorf("geoip: %w", err)
		}
		fs = append(fs, f)
	}
	// The old readers are left to the garbage collector rather than
	// closed: a concurrent lookup may still be walking them.
	c.files.Store(&fs)
	return nil
}

// Name is "geoip".
func (c *City) Name() string { return "geoip" }

// Start watches the files for changes.
func (c *City) Start() error { c.w.Start(); return nil }

// Stop ends the watcher. Idempotent.
func (c *City) Stop() { c.w.Stop() }

// Watcher exposes the file watcher (reload counts, synchronous Check).
func (c *City) Watcher() *watch.Watcher { return c.w }

// Lookup returns the location of a, nil when unknown.
func (c *City) Lookup(a netip.Addr) (*flow.Geo, error) {
	a = a.Unmap()
	for _, f := range *c.files.Load() {
		g, err := f.lookup(a)
		if err != nil || g != nil {
			return g, err
		}
	}
	return nil, nil
}

// Enrich sets the geo of both ends that have none yet (internal assets
// already carry their site's location). It reports whether either end was
// found.
func (c *City) Enrich(r *flow.Record, x *flow.Enrichment) (bool, error) {
	if r.Tuple.Family == flow.FamilyLink {
		return false, nil
	}
	var errs error
	hit := false
	for i, e := range [2]*flow.EndpointEnrichment{&x.Source, &x.Destination} {
		if e.Geo != nil {
			continue
		}
		a := r.Tuple.Src
		if i == 1 {
			a = r.Tuple.Dst
		}
		g, err := c.Lookup(a.Netip(r.Tuple.Family))
		if err != nil {
			errs = errors.Join(errs, err)
		}
		if g != nil {
			e.Geo, hit = g, true
		}
	}
	return hit, errs
}

// decodeGeo reads the three common layouts: MaxMind (nested names),
// ip-location-db (flat city/country_code/latitude), IPinfo (flat
// city/region/country/lat/lng).
func decodeGeo(m map[string]any) *flow.Geo {
	g := &flow.Geo{
		CityName:       first(str(path(m, "city", "names", "en")), strOnly(m["city"])),
		CountryISOCode: first(str(path(m, "country", "iso_code")), str(m["country_code"]), strOnly(m["country"])),
		CountryName:    first(str(path(m, "country", "names", "en")), str(m["country_name"])),
		RegionName:     first(subdivision(m), str(m["state1"]), str(m["region"])),
		ContinentCode:  first(str(path(m, "continent", "code")), strOnly(m["continent"])),
		Timezone:       first(str(path(m, "location", "time_zone")), str(m["timezone"])),
	}
	lat, ok1 := num(first2(path(m, "location", "latitude"), m["latitude"], m["lat"]))
	lon, ok2 := num(first2(path(m, "location", "longitude"), m["longitude"], m["lng"]))
	if ok1 && ok2 {
		g.Lat, g.Lon, g.HasLocation = lat, lon, true
	}
	return g
}

func strOnly(v any) string {
	s, _ := v.(string)
	return s
}

func first2(vs ...any) any {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func subdivision(m map[string]any) string {
	if s, ok := m["subdivisions"].([]any); ok && len(s) > 0 {
		if sm, ok := s[0].(map[string]any); ok {
			return str(path(sm, "names", "en"))
		}
	}
	return ""
}
