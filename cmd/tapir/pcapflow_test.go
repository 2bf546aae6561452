package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// fakeAPI answers like the collector's API: the pcap endpoint serves a
// shared capture with the API's trailers, flows serves two ECS lines,
// sensors one sensor; it checks the bearer token and records queries.
func fakeAPI(t *testing.T, pcap []byte) (*httptest.Server, *[]string) {
	var seen []string
	mux := http.NewServeMux()
	auth := func(w http.ResponseWriter, r *http.Request) bool {
		seen = append(seen, r.URL.RawQuery)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"missing or invalid credentials","code":"unauthenticated"}`))
			return false
		}
		return true
	}
	mux.HandleFunc("/api/v1/pcap", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		if r.URL.Query().Get("flow") == "1:unknown" {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"flow unknown","code":"flow_unknown"}`))
			return
		}
		w.Header().Set("Trailer", "X-Tapir-Complete, X-Tapir-Packets")
		w.Header().Set("X-Tapir-Flows", "1")
		_, _ = w.Write(pcap)
		w.Header().Set("X-Tapir-Complete", "true")
		w.Header().Set("X-Tapir-Packets", "14")
	})
	mux.HandleFunc("/api/v1/flows", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		w.Header().Set("Trailer", "X-Tapir-More, X-Tapir-Complete")
		_, _ = w.Write([]byte(`{"network":{"transport":"tcp","community_id":"1:a","packets":14,"bytes":6000},"source":{"ip":"10.0.0.1","port":1},"destination":{"ip":"10.0.0.2","port":80},"event":{"start":"2024-01-01T00:00:00Z","reason":"fin"}}` + "\n"))
		_, _ = w.Write([]byte(`{"network":{"transport":"udp","community_id":"1:b"},"source":{"ip":"10.0.0.1","port":2},"destination":{"ip":"10.0.0.3","port":53},"event":{"reason":"idle-timeout"}}` + "\n"))
		w.Header().Set("X-Tapir-More", "false")
		w.Header().Set("X-Tapir-Complete", "true")
	})
	mux.HandleFunc("/api/v1/sensors", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		_ = json.NewEncoder(w).Encode([]registry.SensorStatus{{Info: registry.Info{ID: "sensor-7"}, Connected: true}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestAPICommands(t *testing.T) {
	orig, err := os.ReadFile(testenv.Pcap(t, "zeek/get.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	srv, seen := fakeAPI(t, orig)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.pcap")
	exec := func(args ...string) (int, string, string) {
		var so, se bytes.Buffer
		code := run(context.Background(), args, &so, &se)
		return code, so.String(), se.String()
	}

	code, _, se := exec("pcap", "--server", srv.URL, "--token-file", tokFile, "--flow", "1:yvyB8h+3dnggTZW0UEITWCst97w=",
		"--from", "5m ago", "--max-packets", "10", "--truncate", "-o", out)
	if code != 0 {
		t.Fatalf("pcap --flow: exit %d: %s", code, se)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, orig) {
		t.Fatalf("output file differs from the served capture (%d vs %d bytes)", len(got), len(orig))
	}
	if q := (*seen)[len(*seen)-1]; !strings.Contains(q, "flow=1%3AyvyB8h") || !strings.Contains(q, "max_packets=10") ||
		!strings.Contains(q, "truncate=1") || !strings.Contains(q, "from=5m+ago") || !strings.Contains(q, "format=pcap") {
		t.Errorf("query string %q", q)
	}
	t.Setenv("TAPIR_TOKEN", "tok")
	t.Setenv("TAPIR_SERVER", srv.URL)
	code, _, se = exec("pcap", "--query", "host 10.0.0.1 and port 53", "--format", "pcapng", "-o", out)
	if q := (*seen)[len(*seen)-1]; code != 0 || !strings.Contains(q, "query=host+10.0.0.1+and+port+53") || !strings.Contains(q, "format=pcapng") {
		t.Errorf("pcap --query: exit %d %s, query %q", code, se, q)
	}
	// An API error exits 1 and leaves no output file.
	os.Remove(out)
	code, _, se = exec("pcap", "--flow", "1:unknown", "-o", out)
	if _, err := os.Stat(out); code != 1 || !strings.Contains(se, "flow unknown") || err == nil {
		t.Errorf("unknown flow: exit %d %q, file stat %v", code, se, err)
	}
	code, _, se = exec("pcap", "--flow", "1:x", "--query", "tcp", "-o", out)
	if code != 2 {
		t.Errorf("--flow with --query: exit %d %s", code, se)
	}
	t.Setenv("TAPIR_TOKEN", "wrong")
	if code, _, se = exec("pcap", "--flow", "1:x", "-o", out); code != 1 || !strings.Contains(se, "401") {
		t.Errorf("bad token: exit %d %s", code, se)
	}
	t.Setenv("TAPIR_TOKEN", "tok")

	code, so, se := exec("flows", "--query", "tcp", "--table")
	if code != 0 || !strings.Contains(so, "10.0.0.1:1") || !strings.Contains(so, "1:b") || strings.Count(so, "\n") != 3 {
		t.Errorf("flows --table: exit %d %s\n%s", code, se, so)
	}
	code, so, _ = exec("flows", "--limit", "5")
	if code != 0 || strings.Count(so, "\n") != 2 || !strings.Contains((*seen)[len(*seen)-1], "limit=5") {
		t.Errorf("flows json: exit %d\n%s", code, so)
	}
	code, so, se = exec("sensors")
	if code != 0 || !strings.Contains(so, "sensor-7") || !strings.Contains(so, "up") {
		t.Errorf("sensors: exit %d %s\n%s", code, se, so)
	}
	t.Setenv("TAPIR_SERVER", "")
	if code, _, se = exec("sensors"); code != 2 {
		t.Errorf("no server: exit %d %s", code, se)
	}
}
