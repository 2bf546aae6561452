package intel

import (
	"bytes"
	"testing"
	"time"
)

var seeds = []string{
	"192.0.2.1\n# c\n198.51.100.0/24\nbad.example\n",
	"indicator,type,description\n192.0.2.1,ip,x\nbad.example,domain,\"a, b\"\n",
	`{"type":"bundle","objects":[{"type":"indicator","id":"i","pattern":"[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'x.example'] OR [x-ja3:value = '00000000000000000000000000000000']"}]}`,
	`{"type":"bundle","objects":[{"type":"indicator","pattern":"[url:value = 'http://a.b/\\'x']"}]}`,
}

// FuzzParseFeed: no input panics any parser, and everything a parser
// returns compiles and normalizes to itself.
func FuzzParseFeed(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		for _, format := range []string{"plain", "csv", "stix"} {
			ins, _, err := ParseFeed(format, "", []byte(s), now)
			if err != nil {
				continue
			}
			compile("f", ins)
			for _, in := range ins {
				again, err := normalize(in.Type, in.Value)
				if err != nil || again.Value != in.Value {
					t.Fatalf("%s %q: renormalizes to %q, %v", format, in.Value, again.Value, err)
				}
			}
		}
	})
}

// FuzzSTIXPattern: the pattern parser never panics.
func FuzzSTIXPattern(f *testing.F) {
	for _, p := range []string{"[ipv4-addr:value = '1.2.3.4']", "[a:b = 'x' OR c:d = 'y'] OR [e:f = 'z'] WITHIN 5 SECONDS", "[a:b = 'x\\'y']"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		_, _ = parsePattern(p)
		_, _ = ParsePlain(bytes.NewReader([]byte(p)), "")
	})
}
