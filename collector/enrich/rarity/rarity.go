// Package rarity flags what the fleet sees for the first time: a
// client-server pair, a server port on a host, a JA4 on a client host, a
// domain. First sightings are remembered in Bloom filters (a false
// positive can hide a first sighting, never invent one) and counted per
// time window in count-min sketches (estimates never under-count), so
// memory is fixed whatever the traffic. Both are snapshotted to disk and
// survive a restart. Keys are hashed with xxhash, stable across restarts.
//
// Only the first report of a flow (segment 0) is counted and flagged;
// later updates of a long flow carry no rarity.
package rarity

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tapir-sensor/tapir/flow"
)

// Config configures the rarity enricher.
type Config struct {
	// Enabled turns the enricher on.
	Enabled bool `yaml:"enabled"`
	// BloomBits is the size of each first-seen filter in bits (a power of
	// two; 4 filters). 2^24 bits (2 MiB) keeps the false positive rate
	// under 1 % up to about 1.7 M distinct keys per kind.
	BloomBits uint64 `yaml:"bloom_bits"`
	// SketchWidth is the width of each count-min sketch row (power of two).
	SketchWidth uint64 `yaml:"sketch_width"`
	// Window is the counting window; counts restart at each boundary
	// (record time).
	Window time.Duration `yaml:"window"`
	// Snapshot is the state file (empty: <store dir>/enrich/rarity.gob.gz,
	// set by the collector).
	Snapshot string `yaml:"snapshot"`
	// SnapshotInterval is how often the state is saved (and at Stop).
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{BloomBits: 1 << 24, SketchWidth: 1 << 16, Window: time.Hour, SnapshotInterval: 5 * time.Minute}
}

// ErrInvalid wraps configuration errors.
var ErrInvalid = errors.New("invalid rarity config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.BloomBits < 64 || bits.OnesCount64(c.BloomBits) != 1 {
		return fmt.Errorf("%w: bloom_bits must be a power of two ≥ 64", ErrInvalid)
	}
	if c.SketchWidth < 16 || bits.OnesCount64(c.SketchWidth) != 1 {
		return fmt.Errorf("%w: sketch_width must be a power of two ≥ 16", ErrInvalid)
	}
	if c.Window <= 0 || c.SnapshotInterval < 0 {
		return fmt.Errorf("%w: window must be positive, snapshot_interval not negative", ErrInvalid)
	}
	return nil
}

const (
	kinds      = 4 // pair, server port, ja4, domain (flow.Rare* bit order)
	bloomK     = 4
	sketchRows = 4
)

// state is the whole memory: bloom filters and sketches, all atomics.
type state struct {
	bloom  [kinds][]atomic.Uint64
	sketch [kinds][]atomic.Uint32 // sketchRows rows of width
	window atomic.Int64           // window start, unix ns
	mu     sync.Mutex             // window rotation
}

// Rarity is the enricher. Enrich is safe for concurrent use and lock-free
// except at window rotation.
type Rarity struct {
	cfg      Config
	log      *slog.Logger
	s        state
	bmask    uint64
	wmask    uint64
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New allocates the filters and loads the snapshot. It starts nothing.
func New(cfg Config, log *slog.Logger) (*Rarity, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Rarity{cfg: cfg, log: log, bmask: cfg.BloomBits - 1, wmask: cfg.SketchWidth - 1, stop: make(chan struct{})}
	for k := range kinds {
		r.s.bloom[k] = make([]atomic.Uint64, cfg.BloomBits/64)
		r.s.sketch[k] = make([]atomic.Uint32, sketchRows*cfg.SketchWidth)
	}
	if cfg.Snapshot != "" {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Name is "rarity".
func (r *Rarity) Name() string { return "rarity" }

// Start runs the periodic snapshot.
func (r *Rarity) Start() error {
	if r.cfg.Snapshot == "" || r.cfg.SnapshotInterval <= 0 {
		return nil
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.cfg.SnapshotInterval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				if err := r.Save(); err != nil {
					r.log.Error("rarity snapshot", "err", err)
				}
			}
		}
	}()
	return nil
}

// Stop ends the timer and saves the snapshot. Idempotent.
func (r *Rarity) Stop() {
	first := false
	r.stopOnce.Do(func() { close(r.stop); first = true })
	r.wg.Wait()
	if first && r.cfg.Snapshot != "" {
		if err := r.Save(); err != nil {
			r.log.Error("rarity snapshot", "err", err)
		}
	}
}

// see adds key to kind's filter and sketch; it returns whether the key
// was new and its count in the window.
func (r *Rarity) see(kind int, h uint64) (bool, uint32) {
	h1, h2 := h, h>>32|h<<32|1
	b := r.s.bloom[kind]
	isNew := false
	for i := range uint64(bloomK) {
		bit := (h1 + i*h2) & r.bmask
		w, m := &b[bit>>6], uint64(1)<<(bit&63)
		if w.Load()&m == 0 {
			if w.Or(m)&m == 0 {
				isNew = true
			}
		}
	}
	sk := r.s.sketch[kind]
	est := uint32(0)
	for row := range uint64(sketchRows) {
		c := sk[row*(r.wmask+1)+((h1+row*h2*31)&r.wmask)].Add(1)
		if row == 0 || c < est {
			est = c
		}
	}
	return isNew, est
}

// rotate starts a new window when t passed the current one.
func (r *Rarity) rotate(t int64) {
	w := int64(r.cfg.Window)
	start := t - t%w
	if r.s.window.Load() >= start {
		return
	}
	r.s.mu.Lock()
	if r.s.window.Load() < start {
		for k := range kinds {
			for i := range r.s.sketch[k] {
				r.s.sketch[k][i].Store(0)
			}
		}
		r.s.window.Store(start)
	}
	r.s.mu.Unlock()
}

// key hashing without allocation
type keyBuf struct {
	b [320]byte
	n int
}

func (k *keyBuf) byte(c byte)    { k.b[k.n] = c; k.n++ }
func (k *keyBuf) bytes(p []byte) { k.n += copy(k.b[k.n:], p) }
func (k *keyBuf) u16(v uint16)   { binary.BigEndian.PutUint16(k.b[k.n:], v); k.n += 2 }
func (k *keyBuf) str(s string)   { k.n += copy(k.b[k.n:min(len(k.b), k.n+255)], s) }
func (k *keyBuf) sum() uint64    { return xxhash.Sum64(k.b[:k.n]) }
func addr(k *keyBuf, r *flow.Record, a *flow.Addr) {
	k.byte(r.Tuple.Family)
	k.bytes(a.Bytes(r.Tuple.Family))
}

// Enrich flags the first sightings and window counts of the flow's pair,
// server port, JA4 and domain. It reports whether anything was new.
func (r *Rarity) Enrich(rec *flow.Record, x *flow.Enrichment) (bool, error) {
	if rec.Tuple.Family == flow.FamilyLink || rec.Segment != 0 {
		return false, nil
	}
	r.rotate(rec.Start.UnixNano())
	out := &flow.Rarity{}
	var k keyBuf
	k.byte(0)
	addr(&k, rec, &rec.Tuple.Src)
	addr(&k, rec, &rec.Tuple.Dst)
	n, c := r.see(0, k.sum())
	out.PairCount = c
	if n {
		out.FirstSeen |= flow.RarePair
	}
	if flow.HasPorts(rec.Tuple.Proto) {
		k = keyBuf{}
		k.byte(1)
		addr(&k, rec, &rec.Tuple.Dst)
		k.byte(rec.Tuple.Proto)
		k.u16(rec.Tuple.DstPort)
		n, c = r.see(1, k.sum())
		out.ServerPortCount = c
		if n {
			out.FirstSeen |= flow.RareServerPort
		}
	}
	if rec.App != nil && rec.App.TLS != nil && rec.App.TLS.JA4 != "" {
		k = keyBuf{}
		k.byte(2)
		addr(&k, rec, &rec.Tuple.Src)
		k.str(rec.App.TLS.JA4)
		n, c = r.see(2, k.sum())
		out.JA4Count = c
		if n {
			out.FirstSeen |= flow.RareJA4
		}
	}
	if x.Domain != "" {
		k = keyBuf{}
		k.byte(3)
		k.str(x.Domain)
		n, c = r.see(3, k.sum())
		out.DomainCount = c
		if n {
			out.FirstSeen |= flow.RareDomain
		}
	}
	x.Rarity = out
	return out.FirstSeen != 0, nil
}

type snapshot struct {
	Version   int
	BloomBits uint64
	Width     uint64
	Window    int64
	Bloom     [kinds][]uint64
	Sketch    [kinds][]uint32
}

// Save writes the state to the snapshot file (atomically, by rename).
// Concurrent updates during Save may or may not be included.
func (r *Rarity) Save() error {
	s := snapshot{Version: 1, BloomBits: r.cfg.BloomBits, Width: r.cfg.SketchWidth, Window: r.s.window.Load()}
	for k := range kinds {
		s.Bloom[k] = make([]uint64, len(r.s.bloom[k]))
		for i := range s.Bloom[k] {
			s.Bloom[k][i] = r.s.bloom[k][i].Load()
		}
		s.Sketch[k] = make([]uint32, len(r.s.sketch[k]))
		for i := range s.Sketch[k] {
			s.Sketch[k][i] = r.s.sketch[k][i].Load()
		}
	}
	path := r.cfg.Snapshot
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("rarity snapshot dir: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("rarity snapshot: %w", err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err := errors.Join(gob.NewEncoder(zw).Encode(&s), zw.Close(), f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rarity snapshot %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rarity snapshot: %w", err)
	}
	return nil
}

// ErrSnapshotMismatch is returned when the snapshot was made with other sizes.
var ErrSnapshotMismatch = errors.New("rarity snapshot sizes differ from the configuration")

func (r *Rarity) load() error {
	f, err := os.Open(r.cfg.Snapshot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rarity snapshot: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("rarity snapshot %s: %w", r.cfg.Snapshot, err)
	}
	var s snapshot
	if err := gob.NewDecoder(zr).Decode(&s); err != nil {
		return fmt.Errorf("rarity snapshot %s: %w", r.cfg.Snapshot, err)
	}
	if s.BloomBits != r.cfg.BloomBits || s.Width != r.cfg.SketchWidth {
		return fmt.Errorf("%w: %s (move it away to start afresh)", ErrSnapshotMismatch, r.cfg.Snapshot)
	}
	for k := range kinds {
		if len(s.Bloom[k]) != len(r.s.bloom[k]) || len(s.Sketch[k]) != len(r.s.sketch[k]) {
			return fmt.Errorf("%w: %s", ErrSnapshotMismatch, r.cfg.Snapshot)
		}
		for i, v := range s.Bloom[k] {
			r.s.bloom[k][i].Store(v)
		}
		for i, v := range s.Sketch[k] {
			r.s.sketch[k][i].Store(v)
		}
	}
	r.s.window.Store(s.Window)
	return nil
}
