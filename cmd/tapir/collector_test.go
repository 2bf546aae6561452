package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/storage/pebble"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// liveCollector is a real collector API over a Pebble store, served with
// TLS from a development CA that `tapir certs` made, with a token that
// `tapir token create` made.
type liveCollector struct {
	url, ca, token string
	ins            []*storagetest.Instance
}

// env is the investigator's environment: server, CA and token by
// environment variable, as the user guide sets them.
func (c *liveCollector) env() []string {
	return []string{"TAPIR_SERVER=" + c.url, "TAPIR_CA=" + c.ca, "TAPIR_TOKEN=" + c.token}
}

// startCollector stores the flows of a shared capture (records with a
// one-second timeline each) and serves them.
func startCollector(t *testing.T, capture string) *liveCollector {
	t.Helper()
	var ins []*storagetest.Instance
	flows := storagetest.LoadFlows(t, capture)
	for i := range flows {
		in := storagetest.NewInstance(&flows[i], "s1", uint32(i+1), 0, 8)
		var pts []flow.TimelinePoint
		first := flows[i].Packets[0].Time
		for _, p := range flows[i].Packets {
			s := first.Add(p.Time.Sub(first).Truncate(time.Second)) // intervals from the flow's start
			if n := len(pts); n > 0 && pts[n-1].Start.Equal(s) {
				pts[n-1].Packets++
				pts[n-1].Bytes += uint64(p.Wire)
				continue
			}
			pts = append(pts, flow.TimelinePoint{Start: s, Packets: 1, Bytes: uint64(p.Wire)})
		}
		in.Record.Timeline = flow.EncodeTimeline(time.Second, pts, 0)
		ins = append(ins, in)
	}
	c := serveStore(t, func(st *pebble.Store) { storagetest.WriteInstances(t, st, "s1", ins, 4, 1) })
	c.ins = ins
	return c
}

// serveStore serves a Pebble store that fill wrote, over TLS from a
// development CA, with a flows:read and pcap:read token.
func serveStore(t *testing.T, fill func(st *pebble.Store)) *liveCollector {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	for _, args := range [][]string{{"certs", "init", "-dir", certs}, {"certs", "server", "-dir", certs, "127.0.0.1"}} {
		if code, _, se := execTapir(t, nil, args...); code != 0 {
			t.Fatalf("tapir %s: exit %d: %s", strings.Join(args, " "), code, se)
		}
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	code, so, se := execTapir(t, nil, "token", "create", "--name", "alice", "--role", "flows:read,pcap:read", "--tokens-file", tokens)
	if code != 0 {
		t.Fatalf("tapir token create: exit %d: %s", code, se)
	}
	c := &liveCollector{ca: tlsconfig.CAPath(certs), token: strings.TrimSpace(so)}
	cfg := pebble.DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes, cfg.MemTableBytes = 8<<20, 4<<20
	st, err := pebble.Open(filepath.Join(dir, "store"), cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fill(st)

	serverCert, serverKey := tlsconfig.Paths(certs, "server")
	acfg := api.DefaultConfig()
	acfg.Listen = "127.0.0.1:0"
	acfg.TLS = tlsconfig.Config{CAFile: c.ca, CertFile: serverCert, KeyFile: serverKey}
	acfg.TokensFile = tokens
	acfg.AuditFile = filepath.Join(dir, "audit.jsonl")
	acfg.AuditSync = false
	srv, err := api.New(acfg, api.Dependencies{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c.url = "https://" + srv.Addr()
	return c
}

// window returns --from and --to around the stored flows.
func (c *liveCollector) window() []string {
	from, to := c.ins[0].Record.Start, c.ins[0].Record.End
	for _, in := range c.ins {
		if in.Record.Start.Before(from) {
			from = in.Record.Start
		}
		if in.Record.End.After(to) {
			to = in.Record.End
		}
	}
	return []string{"--from", from.Add(-time.Minute).UTC().Format(time.RFC3339), "--to", to.Add(time.Minute).UTC().Format(time.RFC3339)}
}

// TestFlowsAgainstDevCA: with TAPIR_SERVER, TAPIR_CA (the CA `tapir
// certs init` made) and TAPIR_TOKEN (made by `tapir token create`), the
// tapir binary lists a real collector's flows over TLS; without TAPIR_CA
// the development CA is not trusted.
func TestFlowsAgainstDevCA(t *testing.T) {
	c := startCollector(t, "zeek/get.pcap")
	code, so, se := execTapir(t, c.env(), append([]string{"flows"}, c.window()...)...)
	if code != 0 || strings.Count(so, "\n") != len(c.ins) || !strings.Contains(so, c.ins[0].ID.String()) {
		t.Fatalf("flows over TLS: exit %d, %d lines for %d flows\nstdout %s\nstderr %s", code, strings.Count(so, "\n"), len(c.ins), so, se)
	}
	env := c.env()
	env[1] = "TAPIR_CA="
	if code, _, se := execTapir(t, env, append([]string{"flows"}, c.window()...)...); code != 1 || !strings.Contains(se, "certificate") {
		t.Errorf("without TAPIR_CA: exit %d, stderr %s", code, se)
	}
	// --ca still overrides the environment.
	env[1] = "TAPIR_CA=/nonexistent/ca.pem"
	if code, _, se := execTapir(t, env, append([]string{"flows", "--ca", c.ca}, c.window()...)...); code != 0 {
		t.Errorf("--ca over TAPIR_CA: exit %d, stderr %s", code, se)
	}
}

// TestFlowsTimelineSparklines: --timeline draws one sparkline per flow
// from the go-tsz timeline its record carries, never raw JSON.
func TestFlowsTimelineSparklines(t *testing.T) {
	c := startCollector(t, "zeek/wikipedia.pcap")
	code, so, se := execTapir(t, c.env(), append([]string{"flows", "--timeline"}, c.window()...)...)
	lines := strings.Split(strings.TrimSpace(so), "\n")
	if code != 0 || len(lines) != len(c.ins) {
		t.Fatalf("exit %d, %d lines for %d flows: %s\n%s", code, len(lines), len(c.ins), se, so)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "{") || !strings.Contains(l, "|") || !strings.Contains(l, "/column") || !strings.ContainsAny(l, "▁▂▃▄▅▆▇█") {
			t.Errorf("not a sparkline: %q", l)
		}
	}
	if !strings.Contains(so, "█") {
		t.Errorf("no full-height column:\n%s", so)
	}
}
