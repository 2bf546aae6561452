package export_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/internal/linktest"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/sensor/export"
)

// TestFreshSpoolSameID: a second exporter under the same sensor id with
// a fresh spool (a reinstalled host) has every batch stored: the
// collector's durable seq for the first spool is not an ack of its own.
func TestFreshSpoolSameID(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 2)
	srv := startCollector(t, pki, store, "127.0.0.1:0")
	addrs := []string{srv.Addr().String()}
	first := newExporter(t, pki, t.TempDir(), addrs, nil, export.Dependencies{})
	for range 3 {
		feed(t, first, tr)
	}
	waitFor(t, 5*time.Second, "first spool stored", func() bool { return complete(store, tr, 3) })
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	second := newExporter(t, pki, t.TempDir(), addrs, nil, export.Dependencies{})
	if second.Stats().Epoch == first.Stats().Epoch {
		t.Fatal("two spools share an epoch")
	}
	feed(t, second, tr)
	waitFor(t, 5*time.Second, "second spool stored", func() bool { return complete(store, tr, 4) })
	// Every block stored exactly 4 times (seqs restart in the new epoch,
	// so checkExactlyOnce's seq order does not apply).
	blocks := map[string]int{}
	for _, b := range store.Batches(sensorID) {
		for _, bl := range b.Blocks {
			blocks[string(bl.Encoded)]++
		}
	}
	for _, bl := range tr.Blocks {
		if n := blocks[string(bl)]; n != 4 {
			t.Fatalf("block stored %d times, want 4", n)
		}
	}
}

// TestPermanentRefusal: a sensor whose certificate names another id is
// refused by the collector; the exporter gives up at once with
// ErrRefused (no reconnect loop), and its batches stay spooled.
func TestPermanentRefusal(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID, "thief")
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 2)
	srv := startCollector(t, pki, store, "127.0.0.1:0")
	e := newExporter(t, pki, t.TempDir(), []string{srv.Addr().String()}, func(c *export.Config) {
		c.TLS = pki.Sensor("thief")
	}, export.Dependencies{})
	feed(t, e, tr)
	select {
	case <-e.Failed():
	case <-time.After(5 * time.Second):
		t.Fatalf("still retrying a refused identity: %+v", e.Stats())
	}
	if !errors.Is(e.Err(), export.ErrRefused) {
		t.Fatalf("err %v", e.Err())
	}
	if st := e.Stats(); st.Reconnects != 0 {
		t.Errorf("%d reconnects after a permanent refusal", st.Reconnects)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Spool.Batches == 0 {
		t.Errorf("nothing left in the spool: %+v", st.Spool)
	}
	if len(store.Batches(sensorID)) != 0 || len(store.Batches("thief")) != 0 {
		t.Error("a refused sensor's batch was stored")
	}
}

// TestMissingCertificate: Start fails with ErrRefused when the
// certificate files cannot be read.
func TestMissingCertificate(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	cfg := export.DefaultConfig()
	cfg.Collectors = []string{"127.0.0.1:1"}
	cfg.SensorID = sensorID
	cfg.TLS = tlsconfig.Config{CAFile: tlsconfig.CAPath(pki.Dir), CertFile: filepath.Join(pki.Dir, "nope.pem"), KeyFile: filepath.Join(pki.Dir, "nope-key.pem")}
	cfg.Spool.Dir = t.TempDir()
	e, err := export.New(cfg, export.Dependencies{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); !errors.Is(err, export.ErrRefused) {
		t.Fatalf("start with a missing certificate: %v", err)
	}
}
