// Package pdns is passive DNS: the names observed in DNS answers (from any
// sensor), per address, with first and last seen times and counts, in
// bounded memory, snapshotted to disk so that it survives a restart. Each
// flow gets destination.domain: the name its client most recently resolved
// to the server's address, else the most recent name anyone resolved to
// it, else the flow's TLS SNI or HTTP host, else (optionally) a PTR name
// from active reverse lookups.
//
// Times are the flow records' times, not the collector's clock, so offline
// captures give the same answers as live ones. Records reach the collector
// when flows end, so a connection that ends before its DNS flow's record
// arrives cannot be named from that answer (the next one can).
package pdns

import (
	"compress/gzip"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapir-sensor/tapir/collector/enrich/lru"
	"github.com/tapir-sensor/tapir/flow"
)

// Config configures passive DNS.
type Config struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// MaxAddresses bounds the addresses remembered (least recently
	// observed evicted first).
	MaxAddresses int `yaml:"max_addresses"`
	// MaxNamesPerAddress bounds the names kept per address.
	MaxNamesPerAddress int `yaml:"max_names_per_address"`
	// MaxClientPairs bounds the (client, address) → name memory.
	MaxClientPairs int `yaml:"max_client_pairs"`
	// Snapshot is the file the state is saved to and loaded from (empty:
	// <store dir>/enrich/pdns.gob.gz, set by the collector).
	Snapshot string `yaml:"snapshot"`
	// SnapshotInterval is how often the state is saved (and at Stop).
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// PTR configures active reverse lookups (off by default).
	PTR PTRConfig `yaml:"ptr"`
}

// PTRConfig configures active PTR lookups of server addresses no DNS
// answer named. Lookups run in the background, never on the record path:
// a flow gets a PTR name only once it is cached.
type PTRConfig struct {
	Enabled bool `yaml:"enabled"`
	// Server is the resolver (host:port); empty uses the system's.
	Server string `yaml:"server"`
	// Timeout bounds one lookup.
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize bounds the cache of answers (and failures).
	CacheSize int `yaml:"cache_size"`
	// Queue bounds the pending lookups; more are dropped (counted).
	Queue int `yaml:"queue"`
	// Workers is the number of concurrent lookups.
	Workers int `yaml:"workers"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxAddresses: 1 << 20, MaxNamesPerAddress: 4, MaxClientPairs: 1 << 20,
		SnapshotInterval: 5 * time.Minute,
		PTR:              PTRConfig{Timeout: 2 * time.Second, CacheSize: 1 << 16, Queue: 1024, Workers: 4},
	}
}

// ErrInvalid wraps configuration errors.
var ErrInvalid = errors.New("invalid pdns config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxAddresses < 1 || c.MaxNamesPerAddress < 1 || c.MaxClientPairs < 1 {
		return fmt.Errorf("%w: max_addresses, max_names_per_address and max_client_pairs must be positive", ErrInvalid)
	}
	if c.SnapshotInterval < 0 {
		return fmt.Errorf("%w: negative snapshot_interval", ErrInvalid)
	}
	if c.PTR.Enabled && (c.PTR.Timeout <= 0 || c.PTR.CacheSize < 1 || c.PTR.Queue < 1 || c.PTR.Workers < 1) {
		return fmt.Errorf("%w: ptr timeout, cache_size, queue and workers must be positive", ErrInvalid)
	}
	return nil
}

// Resolver does reverse lookups (net.Resolver satisfies it).
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Observation is one name seen for an address.
type Observation struct {
	Name        string
	First, Last int64 // unix nanoseconds
	Count       uint64
}

type pairKey struct{ client, server netip.Addr }

type pairVal struct {
	name string
	last int64
}

// Stats are cumulative counters.
type Stats struct {
	Answers, Evictions, PTRLookups, PTRDropped, PTRFailures uint64
}

// PDNS is the passive DNS enricher. Enrich and Lookup are safe for
// concurrent use. New loads the snapshot; Start runs the snapshot timer
// and PTR workers; Stop saves and is idempotent.
type PDNS struct {
	cfg Config
	log *slog.Logger
	res Resolver

	mu    sync.RWMutex
	addrs *lru.Map[netip.Addr, []Observation]
	pairs *lru.Map[pairKey, pairVal]

	ptrMu    sync.RWMutex
	ptrCache *lru.Map[netip.Addr, string]
	ptrQ     chan netip.Addr
	pending  sync.Map

	answers, ptrLookups, ptrDropped, ptrFailures atomic.Uint64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New loads the snapshot if there is one. res is the PTR resolver (nil:
// the system's, or PTR.Server's); it is only used when PTR is enabled.
func New(cfg Config, log *slog.Logger, res Resolver) (*PDNS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &PDNS{cfg: cfg, log: log, res: res,
		addrs: lru.New[netip.Addr, []Observation](cfg.MaxAddresses),
		pairs: lru.New[pairKey, pairVal](cfg.MaxClientPairs),
		stop:  make(chan struct{}),
	}
	if cfg.PTR.Enabled {
		p.ptrCache = lru.New[netip.Addr, string](cfg.PTR.CacheSize)
		p.ptrQ = make(chan netip.Addr, cfg.PTR.Queue)
		if p.res == nil {
			r := &net.Resolver{}
			if cfg.PTR.Server != "" {
				srv := cfg.PTR.Server
				r.PreferGo = true
				r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, srv)
				}
			}
			p.res = r
		}
	}
	if cfg.Snapshot != "" {
		if err := p.load(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Name is "pdns".
func (p *PDNS) Name() string { return "pdns" }

// Start runs the periodic snapshot and the PTR workers.
func (p *PDNS) Start() error {
	if p.cfg.Snapshot != "" && p.cfg.SnapshotInterval > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(p.cfg.SnapshotInterval)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
					if err := p.Save(); err != nil {
						p.log.Error("pdns snapshot", "err", err)
					}
				}
			}
		}()
	}
	if p.cfg.PTR.Enabled {
		for range p.cfg.PTR.Workers {
			p.wg.Add(1)
			go p.ptrWorker()
		}
	}
	return nil
}

// Stop ends the goroutines and saves the snapshot. Idempotent.
func (p *PDNS) Stop() {
	first := false
	p.stopOnce.Do(func() { close(p.stop); first = true })
	p.wg.Wait()
	if first && p.cfg.Snapshot != "" {
		if err := p.Save(); err != nil {
			p.log.Error("pdns snapshot", "err", err)
		}
	}
}

// Stats returns the counters.
func (p *PDNS) Stats() Stats {
	p.mu.RLock()
	ev := p.addrs.Evictions + p.pairs.Evictions
	p.mu.RUnlock()
	return Stats{Answers: p.answers.Load(), Evictions: ev, PTRLookups: p.ptrLookups.Load(),
		PTRDropped: p.ptrDropped.Load(), PTRFailures: p.ptrFailures.Load()}
}

// Observe records the A/AAAA answers of a DNS transaction: the queried
// name, as the client asked for it, for each answered address.
func (p *PDNS) Observe(client netip.Addr, d *flow.DNSMeta, when time.Time) {
	if d == nil || !d.HasResponse || d.ResponseCode != 0 || d.QueryName == "" {
		return
	}
	name := strings.ToLower(strings.TrimSuffix(d.QueryName, "."))
	ts := when.UnixNano()
	client = client.Unmap()
	for i := range d.Answers {
		an := &d.Answers[i]
		if an.Type != 1 && an.Type != 28 {
			continue
		}
		a, err := netip.ParseAddr(an.Data)
		if err != nil {
			continue
		}
		a = a.Unmap()
		p.answers.Add(1)
		p.mu.Lock()
		p.observe(a, name, ts, 1)
		if pv, ok := p.pairs.Get(pairKey{client, a}); !ok || pv.last <= ts || pv.name == name {
			p.pairs.Put(pairKey{client, a}, pairVal{name: name, last: max(ts, pv.last)})
		}
		p.mu.Unlock()
	}
}

// observe adds count sightings of name for a at ts. Caller holds mu.
func (p *PDNS) observe(a netip.Addr, name string, ts int64, count uint64) {
	obs := p.addrs.Ptr(a)
	if obs == nil {
		p.addrs.Put(a, []Observation{{Name: name, First: ts, Last: ts, Count: count}})
		return
	}
	for i := range *obs {
		o := &(*obs)[i]
		if o.Name == name {
			o.First, o.Last = min(o.First, ts), max(o.Last, ts)
			o.Count += count
			return
		}
	}
	n := Observation{Name: name, First: ts, Last: ts, Count: count}
	if len(*obs) < p.cfg.MaxNamesPerAddress {
		*obs = append(*obs, n)
		return
	}
	// replace the name seen least recently
	old := 0
	for i := range *obs {
		if (*obs)[i].Last < (*obs)[old].Last {
			old = i
		}
	}
	(*obs)[old] = n
}

// Names returns a copy of the names observed for a.
func (p *PDNS) Names(a netip.Addr) []Observation {
	p.mu.RLock()
	defer p.mu.RUnlock()
	obs, _ := p.addrs.Get(a.Unmap())
	return append([]Observation(nil), obs...)
}

// Lookup returns the name client most likely resolved for server, and
// where it comes from ("dns" or "ptr"), or "".
func (p *PDNS) Lookup(client, server netip.Addr) (string, string) {
	client, server = client.Unmap(), server.Unmap()
	p.mu.RLock()
	if pv, ok := p.pairs.Get(pairKey{client, server}); ok {
		p.mu.RUnlock()
		return pv.name, "dns"
	}
	if obs, ok := p.addrs.Get(server); ok && len(obs) > 0 {
		best := 0
		for i := range obs {
			if obs[i].Last > obs[best].Last {
				best = i
			}
		}
		name := obs[best].Name
		p.mu.RUnlock()
		return name, "dns"
	}
	p.mu.RUnlock()
	return "", ""
}

// Enrich feeds a DNS record's answers into the store and names the flow's
// destination. It reports whether a name was found.
func (p *PDNS) Enrich(r *flow.Record, x *flow.Enrichment) (bool, error) {
	if r.Tuple.Family == flow.FamilyLink {
		return false, nil
	}
	client, server := r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family)
	if r.App != nil && r.App.DNS != nil {
		p.Observe(client, r.App.DNS, r.End)
	}
	if name, src := p.Lookup(client, server); name != "" {
		x.Domain, x.DomainSource = name, src
		return true, nil
	}
	if r.App != nil {
		if r.App.TLS != nil && r.App.TLS.ServerName != "" {
			x.Domain, x.DomainSource = strings.ToLower(r.App.TLS.ServerName), "tls.sni"
			return true, nil
		}
		if r.App.HTTP != nil && r.App.HTTP.Host != "" {
			x.Domain, x.DomainSource = hostOnly(r.App.HTTP.Host), "http.host"
			return true, nil
		}
	}
	if p.cfg.PTR.Enabled {
		if name := p.ptr(server); name != "" {
			x.Domain, x.DomainSource = name, "ptr"
			return true, nil
		}
	}
	return false, nil
}

// hostOnly strips a port from an HTTP Host header.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// ptr returns a cached PTR name, queueing a lookup on a miss.
func (p *PDNS) ptr(a netip.Addr) string {
	p.ptrMu.RLock()
	name, ok := p.ptrCache.Get(a)
	p.ptrMu.RUnlock()
	if ok {
		return name
	}
	if _, busy := p.pending.LoadOrStore(a, struct{}{}); busy {
		return ""
	}
	select {
	case p.ptrQ <- a:
	default:
		p.pending.Delete(a)
		p.ptrDropped.Add(1)
	}
	return ""
}

func (p *PDNS) ptrWorker() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case a := <-p.ptrQ:
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PTR.Timeout)
			names, err := p.res.LookupAddr(ctx, a.String())
			cancel()
			p.ptrLookups.Add(1)
			name := ""
			if err != nil {
				p.ptrFailures.Add(1)
			} else if len(names) > 0 {
				name = strings.ToLower(strings.TrimSuffix(names[0], "."))
			}
			p.ptrMu.Lock()
			p.ptrCache.Put(a, name) // failures cached too: no retry storm
			p.ptrMu.Unlock()
			p.pending.Delete(a)
		}
	}
}

// snapshot is the on-disk form.
type snapshot struct {
	Version int
	Addrs   []snapAddr
	Pairs   []snapPair
}

type snapAddr struct {
	Addr netip.Addr
	Obs  []Observation
}

type snapPair struct {
	Client, Server netip.Addr
	Name           string
	Last           int64
}

// Save writes the state to the snapshot file (atomically, by rename).
func (p *PDNS) Save() error {
	var s snapshot
	s.Version = 1
	p.mu.RLock()
	p.addrs.Oldest(func(a netip.Addr, obs []Observation) {
		s.Addrs = append(s.Addrs, snapAddr{a, append([]Observation(nil), obs...)})
	})
	p.pairs.Oldest(func(k pairKey, v pairVal) {
		s.Pairs = append(s.Pairs, snapPair{k.client, k.server, v.name, v.last})
	})
	p.mu.RUnlock()
	return writeGob(p.cfg.Snapshot, &s)
}

func (p *PDNS) load() error {
	var s snapshot
	found, err := readGob(p.cfg.Snapshot, &s)
	if err != nil || !found {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range s.Addrs {
		for _, o := range a.Obs {
			p.observe(a.Addr, o.Name, o.First, o.Count)
			p.observe(a.Addr, o.Name, o.Last, 0)
		}
	}
	for _, pr := range s.Pairs {
		p.pairs.Put(pairKey{pr.Client, pr.Server}, pairVal{pr.Name, pr.Last})
	}
	return nil
}

// writeGob saves v gzip-compressed through a temporary file and rename.
func writeGob(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("snapshot dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	zw := gzip.NewWriter(f)
	err = errors.Join(gob.NewEncoder(zw).Encode(v), zw.Close(), f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// readGob loads a snapshot; a missing file is not an error.
func readGob(path string, v any) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return false, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := gob.NewDecoder(zr).Decode(v); err != nil {
		return false, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return true, nil
}
