package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
)

// TestInspectRolesAndAudit: the record needs flows:read; packets, one
// packet and the stream need pcap:read (a flows:read-only token gets
// 403); every inspection call, allowed or denied, is in the audit log
// with the flow asked for.
func TestInspectRolesAndAudit(t *testing.T) {
	c, ts, _ := setup(t, "zeek/get.pcap", []string{"s1"}, nil)
	id := c.flows[0].rec.ID.String()
	base := "/api/v1/flows/" + id
	cases := []struct {
		token, path, endpoint string
		status                int
	}{
		{tokBob, base, "flow", http.StatusOK},
		{tokBob, base + "/packets", "packets", http.StatusForbidden},
		{tokBob, base + "/packets/1", "packet", http.StatusForbidden},
		{tokBob, base + "/stream", "stream", http.StatusForbidden},
		{tokBob, base + "/stream?format=ascii", "stream", http.StatusForbidden},
		{tokAlice, base + "/packets", "packets", http.StatusOK},
		{tokAlice, base + "/packets/2", "packet", http.StatusOK},
		{tokAlice, base + "/stream?format=ascii", "stream", http.StatusOK},
		{tokRoot, base + "/stream", "stream", http.StatusOK},
		{"", base + "/packets", "packets", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		resp, body := ts.get(t, tc.token, tc.path)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s with %q: %d, want %d: %s", tc.path, tc.token, resp.StatusCode, tc.status, body)
		}
	}
	entries := readAudit(t, ts.auditPath)
	if len(entries) != len(cases) {
		t.Fatalf("%d audit entries for %d requests", len(entries), len(cases))
	}
	for i, e := range entries {
		tc := cases[i]
		if e.Endpoint != tc.endpoint || e.Status != tc.status || e.Flow != id {
			t.Errorf("request %d (%s): audit entry %+v", i, tc.path, e)
		}
	}
	if e := entries[5]; e.Subject != "alice" || e.Packets != int64(c.packets) || e.Flows != 1 {
		t.Errorf("packet list audit entry %+v", e)
	}
	var rec map[string]any
	getJSON(t, ts, tokBob, base, &rec)
	if ecs, _ := rec["network"].(map[string]any); ecs == nil || ecs["community_id"] != c.flows[0].rec.CommunityID {
		t.Errorf("flow record is not the flow's ECS record: %v", rec)
	}
}

// TestInspectMalformedIDs: a malformed flow ID or Community ID answers
// 400 on every inspection endpoint; a well-formed unknown one 404; a
// Community ID holding '/' is written %2F.
func TestInspectMalformedIDs(t *testing.T) {
	c, ts, _ := setup(t, "zeek/wikipedia.pcap", []string{"s1"}, nil)
	for _, id := range []string{"xyz", "1:short", "1:" + "!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "0123456789abcdef0123456789abcdeg"} {
		for _, suffix := range []string{"", "/packets", "/packets/1", "/stream"} {
			resp, body := ts.get(t, tokAlice, "/api/v1/flows/"+url.PathEscape(id)+suffix)
			var e struct{ Code string }
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != http.StatusBadRequest || e.Code != "bad_request" {
				t.Errorf("%q%s: %d %s", id, suffix, resp.StatusCode, body)
			}
		}
	}
	unknown := flow.ID{1, 2, 3}.String()
	for _, suffix := range []string{"", "/packets", "/stream"} {
		if resp, body := ts.get(t, tokAlice, "/api/v1/flows/"+unknown+suffix); resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown flow%s: %d %s", suffix, resp.StatusCode, body)
		}
	}
	for _, bad := range []string{"/packets/0", "/packets/x", "/packets?limit=0", "/stream?format=hex"} {
		if resp, body := ts.get(t, tokAlice, "/api/v1/flows/"+c.flows[0].rec.ID.String()+bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	// A Community ID with a '/' reaches its flow.
	i := slices.IndexFunc(c.flows, func(cf *capFlow) bool { return slices.Contains([]byte(cf.rec.CommunityID), '/') })
	if i < 0 {
		t.Fatal("no Community ID with a '/' in the capture")
	}
	var got listAnswer
	getJSON(t, ts, tokAlice, "/api/v1/flows/"+url.PathEscape(c.flows[i].rec.CommunityID)+"/packets", &got)
	if len(got.Packets) == 0 {
		t.Fatal("no packets by a Community ID holding '/'")
	}
}
