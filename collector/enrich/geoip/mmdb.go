package geoip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// mmdbFile is one open MaxMind DB with a bounded cache of decoded records
// keyed by data offset (many networks share one record), so that a lookup
// costs a tree walk and a map read. Safe for concurrent use.
type mmdbFile[T any] struct {
	r      *maxminddb.Reader
	ipv4   bool // IPv4-only tree
	decode func(m map[string]any) *T
	max    int

	mu    sync.RWMutex
	cache map[uintptr]*T
}

func openMMDB[T any](path string, max int, decode func(map[string]any) *T) (*mmdbFile[T], error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if r.Metadata.NodeCount == 0 {
		r.Close()
		return nil, fmt.Errorf("%w: %s: empty search tree", ErrBadData, path)
	}
	return &mmdbFile[T]{r: r, ipv4: r.Metadata.IPVersion == 4, decode: decode, max: max, cache: make(map[uintptr]*T)}, nil
}

// lookup returns the decoded record for a, nil when not found.
func (f *mmdbFile[T]) lookup(a netip.Addr) (*T, error) {
	if f.ipv4 && !a.Is4() {
		return nil, nil
	}
	res := f.r.Lookup(a)
	if err := res.Err(); err != nil {
		return nil, err
	}
	if !res.Found() {
		return nil, nil
	}
	off := res.Offset()
	f.mu.RLock()
	v, ok := f.cache[off]
	f.mu.RUnlock()
	if ok {
		return v, nil
	}
	var m map[string]any
	if err := res.Decode(&m); err != nil {
		return nil, err
	}
	v = f.decode(m)
	f.mu.Lock()
	if len(f.cache) >= f.max {
		clear(f.cache) // crude but bounded; the working set refills quickly
	}
	f.cache[off] = v
	f.mu.Unlock()
	return v, nil
}

func (f *mmdbFile[T]) close() { f.r.Close() }

// path walks nested maps: path(m, "city", "names", "en").
func path(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseASN reads 15169, "15169" or "AS15169".
func parseASN(v any) uint32 {
	if f, ok := num(v); ok {
		return uint32(f)
	}
	s := strings.TrimPrefix(strings.ToUpper(str(v)), "AS")
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}
