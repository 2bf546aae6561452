package intel

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Feeds = []FeedConfig{{File: "x", Format: "xml"}}
	if c.Validate() == nil {
		t.Fatal("format xml validated")
	}
}

func rec(src, dst string) *flow.Record {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	r := &flow.Record{}
	r.Tuple.Src, r.Tuple.Family = flow.AddrFromNetip(s)
	r.Tuple.Dst, _ = flow.AddrFromNetip(d)
	r.Tuple.Proto = 6
	return r
}

func write(t *testing.T, p, s string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
}

// TestMalformedFeedKeepsPrevious: a feed that breaks on reload is
// rejected with an error naming the line, and the previous one matches on.
func TestMalformedFeedKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.txt")
	write(t, p, "203.0.113.7\nevil.example\n", -time.Hour)
	x, err := New(Config{Enabled: true, Feeds: []FeedConfig{{File: p}}, ReloadInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	match := func(dst string) int {
		var e flow.Enrichment
		e.Domain = "www.evil.example"
		if _, err := x.Enrich(rec("10.0.0.1", dst), &e); err != nil {
			t.Fatal(err)
		}
		return len(e.Threats)
	}
	if match("203.0.113.7") != 2 || match("203.0.113.8") != 1 {
		t.Fatalf("before: %d %d", match("203.0.113.7"), match("203.0.113.8"))
	}
	write(t, p, "203.0.113.9\nnot a domain!\n", 0)
	err = x.Check()
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("reload error %v", err)
	}
	if match("203.0.113.7") != 2 || match("203.0.113.9") != 1 {
		t.Fatal("the previous feed is not in force")
	}
	write(t, p, "203.0.113.9\n", time.Hour)
	if err := x.Check(); err != nil {
		t.Fatal(err)
	}
	if match("203.0.113.7") != 0 || match("203.0.113.9") != 1 {
		t.Fatal("fixed feed not loaded")
	}
	st := x.Feeds()[0]
	if st.Reloads != 1 || st.Failures != 1 || st.Indicators != 1 {
		t.Fatalf("stats %+v", st)
	}
	// and at start, a malformed feed is an error
	write(t, p, "[ipv4-addr:value = '1.2.3.4'\n", 2*time.Hour)
	if _, err := New(Config{Enabled: true, Feeds: []FeedConfig{{File: p, Format: "stix"}}}, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("New with a malformed feed: %v", err)
	}
}

func TestParsers(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ins, _, err := ParseSTIX(strings.NewReader(`{"type":"bundle","objects":[
	{"type":"indicator","id":"i1","pattern":"[ipv4-addr:value = '198.51.100.0/24' OR domain-name:value = 'Bad.Example.']","pattern_type":"stix"},
	{"type":"indicator","id":"i2","pattern":"[network-traffic:dst_ref.value = '2001:db8::1'] OR [x-ja4:value = 't13d1516h2_8daaf6152771_e5627efa2ab1']"},
	{"type":"indicator","id":"i3","pattern":"[file:hashes.MD5 = 'abc']"},
	{"type":"indicator","id":"i4","pattern":"[ipv4-addr:value = '1.1.1.1' AND domain-name:value = 'x.com']"},
	{"type":"indicator","id":"i5","pattern":"[ipv4-addr:value = '9.9.9.9']","valid_until":"2020-01-01T00:00:00Z"},
	{"type":"indicator","id":"i6","pattern":"[url:value = 'http://it\\'s.example.org/x']"}]}`), now)
	if err == nil {
		t.Fatalf("bad domain in url accepted: %v", ins)
	}
	ins, skipped, err := ParseSTIX(strings.NewReader(`{"type":"bundle","objects":[
	{"type":"indicator","id":"i1","pattern":"[ipv4-addr:value = '198.51.100.0/24' OR domain-name:value = 'Bad.Example.']","pattern_type":"stix"},
	{"type":"indicator","id":"i2","pattern":"[network-traffic:dst_ref.value = '2001:db8::1'] OR [x-ja4:value = 't13d1516h2_8daaf6152771_e5627efa2ab1']"},
	{"type":"indicator","id":"i3","pattern":"[file:hashes.MD5 = 'abc']"},
	{"type":"indicator","id":"i4","pattern":"[ipv4-addr:value = '1.1.1.1' AND domain-name:value = 'x.com']"},
	{"type":"indicator","id":"i5","pattern":"[ipv4-addr:value = '9.9.9.9']","valid_until":"2020-01-01T00:00:00Z"},
	{"type":"indicator","id":"i6","pattern":"[url:value = 'http://www.example.org/x']"}]}`), now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		got = append(got, in.Type+":"+in.Value)
	}
	want := "cidr:198.51.100.0/24 domain:bad.example ip:2001:db8::1 ja4:t13d1516h2_8daaf6152771_e5627efa2ab1 domain:www.example.org"
	if strings.Join(got, " ") != want || skipped != 3 {
		t.Fatalf("got %v skipped %d", got, skipped)
	}
	for _, bad := range []string{`{"type":"bundle","objects":[{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3.4'"}]}`,
		`{"type":"bundle","objects":[{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3.999']"}]}`,
		`{"type":"bundle","objects":[{"type":"indicator","pattern":"ipv4-addr:value = '1.2.3.4'"}]}`,
		`{"type":"bundle","objects":[`, `{"type":"report"}`} {
		if _, _, err := ParseSTIX(strings.NewReader(bad), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	ins, err = ParseCSV(strings.NewReader("indicator,type,description\n192.0.2.1,,c2\nbad.example,domain,phish\n"+strings.Repeat("a", 32)+",ja3,tool\n"), "")
	if err != nil || len(ins) != 3 || ins[0].Description != "c2" || ins[2].Type != TypeJA3 {
		t.Fatalf("csv: %v %v", ins, err)
	}
	if _, err := ParseCSV(strings.NewReader("indicator,type\n192.0.2.1,ja3\n"), ""); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("csv bad ja3: %v", err)
	}
}
