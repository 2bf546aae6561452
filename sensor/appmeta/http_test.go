package appmeta

import (
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestHTTPMatchesTshark checks the first request and response of every
// HTTP flow against tshark: method, Host, URI, User-Agent, status code
// and Content-Type.
func TestHTTPMatchesTshark(t *testing.T) {
	for _, rel := range []string{"zeek/get.pcap", "zeek/wikipedia.pcap", "zeek/http-vlan-0.pcap", "zeek/mixed-vlan-mpls.pcap"} {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			got, _ := extract(t, path, DefaultConfig())
			seen := map[string]bool{}
			n := 0
			for _, r := range tsharkRows(t, path, "http.request", "http.request.method", "http.host", "http.request.uri", "http.user_agent") {
				if seen[r.key] {
					continue
				}
				seen[r.key] = true
				n++
				m := got[r.key]
				if m == nil || m.HTTP == nil {
					t.Errorf("%s: no HTTP metadata", r.key)
					continue
				}
				h := m.HTTP
				if h.Method != r.vals["http.request.method"] || h.Host != r.vals["http.host"] ||
					h.URI != r.vals["http.request.uri"] || h.UserAgent != r.vals["http.user_agent"] {
					t.Errorf("%s: %q %q %q %q, tshark %v", r.key, h.Method, h.Host, h.URI, h.UserAgent, r.vals)
				}
			}
			for _, r := range tsharkRows(t, path, "http.response", "http.response.code", "http.content_type") {
				if seen[r.key+" resp"] {
					continue
				}
				seen[r.key+" resp"] = true
				n++
				m := got[r.key]
				if m == nil || m.HTTP == nil {
					t.Errorf("%s: no HTTP metadata", r.key)
					continue
				}
				if code := atoi(t, r.vals["http.response.code"]); m.HTTP.StatusCode != code || m.HTTP.ContentType != r.vals["http.content_type"] {
					t.Errorf("%s: %d %q, tshark %v", r.key, m.HTTP.StatusCode, m.HTTP.ContentType, r.vals)
				}
			}
			if n == 0 {
				t.Fatal("tshark found no HTTP")
			}
		})
	}
}

// TestSSHMatchesTshark checks both identification strings of every SSH
// flow against tshark's ssh.protocol (the server is the side on port 22).
func TestSSHMatchesTshark(t *testing.T) {
	path := testenv.Pcap(t, "zeek/ssh.pcap")
	got, _ := extract(t, path, DefaultConfig())
	rows := tsharkRows(t, path, "ssh.protocol", "ssh.protocol")
	if len(rows) == 0 {
		t.Fatal("tshark found no SSH")
	}
	for _, r := range rows {
		m := got[r.key]
		if m == nil || m.SSH == nil {
			t.Errorf("%s: no SSH metadata", r.key)
			continue
		}
		v := m.SSH.ClientVersion
		if r.sport == "22" {
			v = m.SSH.ServerVersion
		}
		if v != r.vals["ssh.protocol"] {
			t.Errorf("%s: %q, tshark %q (port %s)", r.key, v, r.vals["ssh.protocol"], r.sport)
		}
	}
}
