package geoip

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tapir-sensor/tapir/collector/enrich/watch"
	"github.com/tapir-sensor/tapir/flow"
)

// ErrBadData is returned for data files that do not parse.
var ErrBadData = errors.New("bad data file")

// ASN is the autonomous system enricher. Enrich and Lookup are safe for
// concurrent use; a reload swaps the data atomically.
type ASN struct {
	cfg  ASNConfig
	log  *slog.Logger
	data atomic.Pointer[asnData]
	w    *watch.Watcher
}

type asnData struct {
	v4    []range4
	v6    []range6
	mmdbs []*mmdbFile[flow.AS]
}

type range4 struct {
	start, end uint32
	as         *flow.AS
}

type range6 struct {
	startHi, startLo, endHi, endLo uint64
	as                             *flow.AS
}

// NewASN loads the files. It starts nothing.
func NewASN(cfg ASNConfig, log *slog.Logger) (*ASN, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &ASN{cfg: cfg, log: log}
	if err := a.load(); err != nil {
		return nil, err
	}
	a.w = watch.New(cfg.Files, cfg.ReloadInterval, a.load, log)
	return a, nil
}

func (a *ASN) load() error {
	d := &asnData{}
	ases := map[flow.AS]*flow.AS{}
	for _, p := range a.cfg.Files {
		if strings.HasSuffix(strings.ToLower(p), ".mmdb") {
			f, err := openMMDB(p, max(a.cfg.CacheSize, 1), decodeAS)
			if err != nil {
				return fmt.Errorf("asn: %w", err)
			}
			d.mmdbs = append(d.mmdbs, f)
			continue
		}
		if err := d.loadCSV(p, ases); err != nil {
			return fmt.Errorf("asn: %w", err)
		}
	}
	slices.SortFunc(d.v4, func(x, y range4) int { return cmp64(uint64(x.start), uint64(y.start)) })
	slices.SortFunc(d.v6, func(x, y range6) int {
		if c := cmp64(x.startHi, y.startHi); c != 0 {
			return c
		}
		return cmp64(x.startLo, y.startLo)
	})
	a.data.Store(d)
	return nil
}

func cmp64(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// loadCSV reads start,end,asn,organization lines.
func (d *asnData) loadCSV(path string, ases map[flow.AS]*flow.AS) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	return d.parseCSV(bufio.NewReaderSize(f, 1<<16), path, ases)
}

func (d *asnData) parseCSV(r io.Reader, name string, ases map[flow.AS]*flow.AS) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	line := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadData, name, err)
		}
		if len(rec) < 3 {
			return fmt.Errorf("%w: %s line %d: want start,end,asn[,organization]", ErrBadData, name, line)
		}
		start, err1 := netip.ParseAddr(strings.TrimSpace(rec[0]))
		end, err2 := netip.ParseAddr(strings.TrimSpace(rec[1]))
		n, err3 := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(rec[2]), "AS"), 10, 32)
		if err1 != nil || err2 != nil || err3 != nil || start.Is4() != end.Is4() || end.Less(start) {
			if line == 1 && err1 != nil { // a header line
				continue
			}
			return fmt.Errorf("%w: %s line %d: bad range %q", ErrBadData, name, line, strings.Join(rec, ","))
		}
		org := ""
		if len(rec) > 3 {
			org = rec[3]
		}
		k := flow.AS{Number: uint32(n), Organization: org}
		as := ases[k]
		if as == nil {
			as = &k
			ases[k] = as
		}
		if start.Is4() {
			d.v4 = append(d.v4, range4{start: u32(start), end: u32(end), as: as})
		} else {
			sh, sl := u128(start)
			eh, el := u128(end)
			d.v6 = append(d.v6, range6{startHi: sh, startLo: sl, endHi: eh, endLo: el, as: as})
		}
	}
	return nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u128(a netip.Addr) (uint64, uint64) {
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[i+8])
	}
	return hi, lo
}

// Name is "asn".
func (a *ASN) Name() string { return "asn" }

// Start watches the files for changes.
func (a *ASN) Start() error { a.w.Start(); return nil }

// Stop ends the watcher. Idempotent.
func (a *ASN) Stop() { a.w.Stop() }

// Watcher exposes the file watcher.
func (a *ASN) Watcher() *watch.Watcher { return a.w }

// Lookup returns the AS of addr, nil when unknown.
func (a *ASN) Lookup(addr netip.Addr) (*flow.AS, error) {
	addr = addr.Unmap()
	d := a.data.Load()
	if addr.Is4() {
		v := u32(addr)
		// the last range starting at or before v
		i, _ := slices.BinarySearchFunc(d.v4, v, func(r range4, v uint32) int { return cmp64(uint64(r.start), uint64(v)) })
		if i < len(d.v4) && d.v4[i].start == v {
			return d.v4[i].as, nil
		}
		if i > 0 && d.v4[i-1].end >= v {
			return d.v4[i-1].as, nil
		}
	} else {
		hi, lo := u128(addr)
		i := searchRange6(d.v6, hi, lo)
		if i >= 0 {
			r := &d.v6[i]
			if r.endHi > hi || (r.endHi == hi && r.endLo >= lo) {
				return r.as, nil
			}
		}
	}
	for _, f := range d.mmdbs {
		as, err := f.lookup(addr)
		if err != nil || as != nil {
			return as, err
		}
	}
	return nil, nil
}

// searchRange6 returns the index of the last range starting at or before
// (hi, lo), or -1.
func searchRange6(rs []range6, hi, lo uint64) int {
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		r := &rs[h]
		if r.startHi < hi || (r.startHi == hi && r.startLo <= lo) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i - 1
}

// Enrich sets the AS of both ends. It reports whether either was found.
func (a *ASN) Enrich(r *flow.Record, x *flow.Enrichment) (bool, error) {
	if r.Tuple.Family == flow.FamilyLink {
		return false, nil
	}
	s, err1 := a.Lookup(r.Tuple.Src.Netip(r.Tuple.Family))
	d, err2 := a.Lookup(r.Tuple.Dst.Netip(r.Tuple.Family))
	if s != nil {
		x.Source.AS = s
	}
	if d != nil {
		x.Destination.AS = d
	}
	return s != nil || d != nil, errors.Join(err1, err2)
}

// decodeAS reads MaxMind GeoLite2-ASN and IPinfo ASN layouts.
func decodeAS(m map[string]any) *flow.AS {
	as := &flow.AS{Number: parseASN(first2(m["autonomous_system_number"], m["asn"]))}
	as.Organization = first(str(m["autonomous_system_organization"]), str(m["as_name"]), str(m["name"]))
	return as
}
