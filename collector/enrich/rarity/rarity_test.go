package rarity

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.BloomBits = 1000
	if c.Validate() == nil {
		t.Fatal("non power of two validated")
	}
}

func rec(src, dst string, port uint16, at time.Time) *flow.Record {
	r := &flow.Record{Start: at, End: at}
	r.Tuple.Src, r.Tuple.Family = flow.AddrFromNetip(netip.MustParseAddr(src))
	r.Tuple.Dst, _ = flow.AddrFromNetip(netip.MustParseAddr(dst))
	r.Tuple.Proto, r.Tuple.SrcPort, r.Tuple.DstPort = 6, 40000, port
	return r
}

// TestFirstSeenSurvivesRestart: first sightings are flagged once, counted
// per window, and remembered across a restart from the snapshot.
func TestFirstSeenSurvivesRestart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BloomBits, cfg.SketchWidth = 1<<16, 1<<10
	cfg.Snapshot = filepath.Join(t.TempDir(), "rarity.gob.gz")
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	var x flow.Enrichment
	x.Domain = "a.example"
	if _, err := r.Enrich(rec("10.0.0.1", "192.0.2.1", 443, t0), &x); err != nil {
		t.Fatal(err)
	}
	if x.Rarity.FirstSeen != flow.RarePair|flow.RareServerPort|flow.RareDomain || x.Rarity.PairCount != 1 {
		t.Fatalf("first: %+v", x.Rarity)
	}
	x = flow.Enrichment{}
	if _, err := r.Enrich(rec("10.0.0.2", "192.0.2.1", 443, t0), &x); err != nil {
		t.Fatal(err)
	}
	if x.Rarity.FirstSeen != flow.RarePair || x.Rarity.ServerPortCount != 2 {
		t.Fatalf("second client: %+v", x.Rarity)
	}
	r.Stop()
	r.Stop()

	r2, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	x = flow.Enrichment{Domain: "a.example"}
	if _, err := r2.Enrich(rec("10.0.0.1", "192.0.2.1", 443, t0.Add(time.Minute)), &x); err != nil {
		t.Fatal(err)
	}
	if x.Rarity.FirstSeen != 0 || x.Rarity.PairCount != 2 || x.Rarity.ServerPortCount != 3 || x.Rarity.DomainCount != 2 {
		t.Fatalf("after restart: %+v", x.Rarity)
	}
	x = flow.Enrichment{}
	if _, err := r2.Enrich(rec("10.0.0.1", "192.0.2.1", 8443, t0.Add(2*time.Hour)), &x); err != nil {
		t.Fatal(err)
	}
	if x.Rarity.FirstSeen != flow.RareServerPort || x.Rarity.PairCount != 1 {
		t.Fatalf("next window: %+v", x.Rarity)
	}
	cfg.BloomBits = 1 << 17
	if _, err := New(cfg, nil); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("size change: %v", err)
	}
}
