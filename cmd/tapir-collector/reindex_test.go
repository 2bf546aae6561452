package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// TestReindex: records written while the search index was off are found
// through the index after `tapir-collector reindex`, exactly as a scan
// finds them; before it, the store does not use its incomplete index.
func TestReindex(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tapir-collector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(t.TempDir(), "collector.yaml")
	plain := bytes.ReplaceAll(config.DefaultsYAML(), []byte("    insecure: false"), []byte("    insecure: true"))
	if err := os.WriteFile(cfgPath, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	open := func(index bool) *pebble.Store {
		cfg := config.DefaultConfig().Store.Pebble
		cfg.MinFreeBytes, cfg.SearchIndex = 0, index
		st, err := pebble.Open(dir, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open(false)
	recs := make([]flow.Record, 2000)
	indextest.New(t, day, 2*time.Hour, len(recs)).Next(recs)
	if _, err := st.Write(context.Background(), &storage.Batch{SensorID: "s", Seq: 1, Records: recs}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cmd := exec.Command(bin, "reindex", "--config", cfgPath, "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "search index rebuilt: 2000 flow records indexed") {
		t.Fatalf("reindex: %v\n%s", err, out)
	}
	st = open(true)
	defer st.Close()
	if !st.IndexReady() {
		t.Fatal("index not ready after reindex")
	}
	sni := ""
	for i := range recs {
		if recs[i].App != nil && recs[i].App.TLS != nil {
			sni = recs[i].App.TLS.ServerName
			break
		}
	}
	q, err := query.Parse("sni == "+sni+" and after 2024-05-01 and before 2024-05-01T03:00:00Z", day, query.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var viaIndex, viaScan []flow.ID
	keep := func(ids *[]flow.ID) func(*flow.Record) error {
		return func(r *flow.Record) error {
			if q.Match(r) {
				*ids = append(*ids, r.ID)
			}
			return nil
		}
	}
	used, err := st.SearchRecords(context.Background(), q.From, q.To, q.IndexLookup(), keep(&viaIndex))
	if err != nil || !used {
		t.Fatalf("search: used %v, %v", used, err)
	}
	if err := st.ScanRecords(context.Background(), q.From, q.To, keep(&viaScan)); err != nil {
		t.Fatal(err)
	}
	if len(viaIndex) == 0 || !slices.Equal(viaIndex, viaScan) {
		t.Fatalf("index found %d, scan %d", len(viaIndex), len(viaScan))
	}
}
