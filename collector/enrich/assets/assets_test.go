package assets

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestInventory(t *testing.T) {
	dir := t.TempDir()
	y := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(y, []byte(`sites:
  hq: {city: Paris, country_iso_code: FR, lat: 48.85, lon: 2.35}
assets:
  - {cidr: 10.1.0.0/16, site: hq, owner: it, role: workstation, criticality: low}
  - {ip: 10.1.2.3, name: dns1, site: hq, role: dns, criticality: high}
  - {cidr: 2001:db8::/32, site: hq, role: lab}
  - {cidr: 198.51.100.0/24, name: partner, external: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Enabled: true, File: y, InternalNetworks: DefaultConfig().InternalNetworks, DefaultSite: "internal"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip, name, role, site string
		internal, geo        bool
	}{
		{"10.1.2.3", "dns1", "dns", "hq", true, true},
		{"10.1.9.9", "", "workstation", "hq", true, true},
		{"2001:db8::5", "", "lab", "hq", true, true},
		{"10.200.0.1", "", "", "internal", true, true},
		{"198.51.100.7", "partner", "", "", false, false},
	} {
		a, g := e.Lookup(netip.MustParseAddr(tc.ip))
		if a == nil || a.Name != tc.name || a.Role != tc.role || a.Site != tc.site || a.Internal != tc.internal || (g != nil) != tc.geo {
			t.Errorf("%s: %+v %+v", tc.ip, a, g)
		}
		if tc.site == "hq" && (g.CityName != "Paris" || !g.HasLocation) {
			t.Errorf("%s: geo %+v", tc.ip, g)
		}
	}
	if a, _ := e.Lookup(netip.MustParseAddr("8.8.8.8")); a != nil {
		t.Errorf("8.8.8.8 is an asset: %+v", a)
	}
	// CSV inventory and a broken reload
	c := filepath.Join(dir, "a.csv")
	if err := os.WriteFile(c, []byte("cidr,name,site,owner,role,criticality\n192.168.1.0/24,,lab,ops,server,high\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2, err := New(Config{Enabled: true, File: c, DefaultSite: "internal"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := e2.Lookup(netip.MustParseAddr("192.168.1.20")); a == nil || a.Owner != "ops" || a.Criticality != "high" {
		t.Fatalf("csv: %+v", a)
	}
	if err := os.WriteFile(c, []byte("cidr,name\n192.168.1.0/33,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(time.Hour)
	if err := os.Chtimes(c, mt, mt); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Watcher().Check(); !errors.Is(err, ErrBadInventory) {
		t.Fatalf("broken inventory: %v", err)
	}
	if a, _ := e2.Lookup(netip.MustParseAddr("192.168.1.20")); a == nil || a.Owner != "ops" {
		t.Fatal("previous inventory not kept")
	}
}
