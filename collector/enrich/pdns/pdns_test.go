package pdns

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

type fakeResolver struct{ calls atomic.Int32 }

func (f *fakeResolver) LookupAddr(_ context.Context, a string) ([]string, error) {
	f.calls.Add(1)
	return []string{"host-" + a + ".example."}, nil
}

// TestPTRInBackground: a PTR lookup is queued on a miss, never made on
// the record path, and served from the cache afterwards.
func TestPTRInBackground(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PTR.Enabled = true
	res := &fakeResolver{}
	p, err := New(cfg, nil, res)
	if err != nil {
		t.Fatal(err)
	}
	r := &flow.Record{}
	r.Tuple.Src, r.Tuple.Family = flow.AddrFromNetip(netip.MustParseAddr("10.0.0.1"))
	r.Tuple.Dst, _ = flow.AddrFromNetip(netip.MustParseAddr("192.0.2.7"))
	var x flow.Enrichment
	if hit, _ := p.Enrich(r, &x); hit {
		t.Fatal("named before any lookup")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		x = flow.Enrichment{}
		if _, err := p.Enrich(r, &x); err != nil {
			t.Fatal(err)
		}
		if x.Domain != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if x.Domain != "host-192.0.2.7.example" || x.DomainSource != "ptr" || res.calls.Load() != 1 {
		t.Fatalf("domain %q source %q calls %d", x.Domain, x.DomainSource, res.calls.Load())
	}
}

// TestClientPreference: a flow gets the name its own client resolved,
// else the latest anyone resolved; bounded names per address.
func TestClientPreference(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxNamesPerAddress = 2
	p, _ := New(cfg, nil, nil)
	srv := "192.0.2.7"
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	t0 := time.Unix(1700000000, 0)
	ans := func(name string) *flow.DNSMeta {
		return &flow.DNSMeta{QueryName: name, HasResponse: true, Answers: []flow.DNSAnswer{{Name: name, Type: 1, Data: srv}}}
	}
	p.Observe(a, ans("one.example"), t0)
	p.Observe(b, ans("two.example"), t0.Add(time.Second))
	p.Observe(b, ans("three.example"), t0.Add(2*time.Second))
	s := netip.MustParseAddr(srv)
	if n, _ := p.Lookup(a, s); n != "one.example" {
		t.Fatalf("client a: %q", n)
	}
	if n, _ := p.Lookup(netip.MustParseAddr("10.0.0.3"), s); n != "three.example" {
		t.Fatalf("other client: %q", n)
	}
	if obs := p.Names(s); len(obs) != 2 {
		t.Fatalf("names kept: %+v", obs)
	}
}
