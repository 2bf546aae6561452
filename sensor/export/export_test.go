package export_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/internal/linktest"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/export"
	"github.com/tapir-sensor/tapir/sensor/spool"
)

const sensorID = "sensor-a"

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCollector runs a fake collector (internal/linktest: the wire
// protocol's in-process fake) on addr ("127.0.0.1:0" for any).
func startCollector(t *testing.T, pki *linktest.PKI, store *linktest.Store, addr string) *linktest.Collector {
	t.Helper()
	return linktest.StartCollector(t, pki, store, addr)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newExporter(t *testing.T, pki *linktest.PKI, spoolDir string, addrs []string, tweak func(*export.Config), deps export.Dependencies) *export.Exporter {
	t.Helper()
	cfg := export.DefaultConfig()
	cfg.Collectors = addrs
	cfg.SensorID = sensorID
	cfg.TLS = pki.Sensor(sensorID)
	cfg.Spool = spool.Config{Dir: spoolDir, MaxBytes: 64 << 20, SegmentBytes: 1 << 20}
	cfg.MaxBatchRecords, cfg.MaxBatchBlocks = 3, 4
	cfg.MaxDelay = 20 * time.Millisecond
	cfg.ReconnectMin, cfg.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.QueueBatches, cfg.MaxInflight = 8, 4
	cfg.StatsInterval = time.Hour
	if tweak != nil {
		tweak(&cfg)
	}
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	deps.Registerer = prometheus.NewRegistry()
	e, err := export.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop exporter: %v", err)
		}
	})
	return e
}

// feed adds the traffic's records and blocks, interleaved.
func feed(t *testing.T, e *export.Exporter, tr *linktest.Traffic) {
	t.Helper()
	for i := range max(len(tr.Records), len(tr.Blocks)) {
		if i < len(tr.Records) {
			if err := e.AddRecord(&tr.Records[i]); err != nil {
				t.Fatal(err)
			}
		}
		if i < len(tr.Blocks) {
			if err := e.AddBlock(tr.Blocks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkExactlyOnce asserts that the store holds every record and block of
// the traffic (fed reps times) exactly once, in increasing seq order.
func checkExactlyOnce(t *testing.T, store *linktest.Store, tr *linktest.Traffic, reps int) {
	t.Helper()
	batches := store.Batches(sensorID)
	var prev uint64
	blocks := map[string]int{}
	records := map[string]int{}
	for _, b := range batches {
		if b.Seq <= prev {
			t.Errorf("batch %d stored after %d", b.Seq, prev)
		}
		prev = b.Seq
		for _, bl := range b.Blocks {
			blocks[string(bl.Encoded)]++
		}
		for _, r := range b.Records {
			records[fmt.Sprintf("%v %s %d", r.ID, r.CommunityID, r.Source.Packets+r.Destination.Packets)]++
		}
	}
	for _, bl := range tr.Blocks {
		if got := blocks[string(bl)]; got != reps {
			t.Fatalf("block stored %d times, want %d", got, reps)
		}
	}
	for _, r := range tr.Records {
		if got := records[fmt.Sprintf("%v %s %d", r.ID, r.CommunityID, r.Source.Packets+r.Destination.Packets)]; got != reps {
			t.Fatalf("record %s stored %d times, want %d", r.CommunityID, got, reps)
		}
	}
}

// complete reports whether the store holds all blocks and records once.
func complete(store *linktest.Store, tr *linktest.Traffic, reps int) bool {
	nb, nr := 0, 0
	for _, b := range store.Batches(sensorID) {
		nb += len(b.Blocks)
		nr += len(b.Records)
	}
	return nb >= reps*len(tr.Blocks) && nr >= reps*len(tr.Records)
}

func TestEndToEnd(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 2)
	srv := startCollector(t, pki, store, "127.0.0.1:0")
	var gotCfg sync.Mutex
	var pushed *tapirv1.SensorConfig
	e := newExporter(t, pki, t.TempDir(), []string{srv.Addr().String()}, nil, export.Dependencies{
		OnConfig: func(c *tapirv1.SensorConfig) { gotCfg.Lock(); pushed = c; gotCfg.Unlock() },
		Stats:    func() map[string]uint64 { return map[string]uint64{"kernel_drops": 7} },
	})
	const reps = 3
	start := time.Now()
	for range reps {
		feed(t, e, tr)
	}
	waitFor(t, 5*time.Second, "all batches stored", func() bool { return complete(store, tr, reps) })
	t.Logf("%d records, %d blocks (%d packets) x%d stored in %v", len(tr.Records), len(tr.Blocks), tr.Packets, reps, time.Since(start))
	checkExactlyOnce(t, store, tr, reps)
	waitFor(t, 5*time.Second, "acks", func() bool {
		st := e.Stats()
		return st.Acked == st.Batches && st.QueueBatches == 0
	})
	if st := e.Stats(); st.Spool.DroppedBatches != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
	// The collector's registry saw the sensor and its stats.
	s, ok := srv.Sensor(sensorID)
	if !ok || !s.Connected || s.Stats["kernel_drops"] != 7 || s.Blocks != uint64(reps*len(tr.Blocks)) {
		t.Errorf("registry: %+v", s)
	}
	// Config push reaches the sensor's callback.
	if n := srv.PushConfig(sensorID, &tapirv1.SensorConfig{CaptureFilter: "tcp", BudgetBytes: -1}); n != 1 {
		t.Fatalf("pushed to %d streams", n)
	}
	waitFor(t, 5*time.Second, "config push", func() bool {
		gotCfg.Lock()
		defer gotCfg.Unlock()
		return pushed != nil && pushed.CaptureFilter == "tcp"
	})
}

func TestCollectorDownThenUp(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 3)
	addr := freeAddr(t)
	e := newExporter(t, pki, t.TempDir(), []string{addr}, nil, export.Dependencies{})
	feed(t, e, tr)
	waitFor(t, 5*time.Second, "spooling", func() bool {
		st := e.Stats()
		return st.Spooled > 0 && st.Spooled == st.Batches
	})
	startCollector(t, pki, store, addr)
	waitFor(t, 10*time.Second, "catch up", func() bool { return complete(store, tr, 1) })
	checkExactlyOnce(t, store, tr, 1)
	waitFor(t, 5*time.Second, "spool drained", func() bool {
		st := e.Stats()
		return st.Acked == st.Batches && st.Spool.Batches == 0
	})
}

func TestCollectorRestartAndFailover(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 2)
	c1 := startCollector(t, pki, store, "127.0.0.1:0")
	addr1 := c1.Addr().String()
	c2 := startCollector(t, pki, store, "127.0.0.1:0") // second collector, same store
	e := newExporter(t, pki, t.TempDir(), []string{addr1, c2.Addr().String()}, nil, export.Dependencies{})
	feed(t, e, tr)
	c1.Stop() // mid-stream: whatever is in flight is resent to c2
	feed(t, e, tr)
	waitFor(t, 10*time.Second, "failover catch up", func() bool { return complete(store, tr, 2) })
	c2.Stop()
	feed(t, e, tr)
	time.Sleep(100 * time.Millisecond)
	startCollector(t, pki, store, addr1) // c1 comes back on its address
	waitFor(t, 10*time.Second, "restart catch up", func() bool { return complete(store, tr, 3) })
	checkExactlyOnce(t, store, tr, 3)
	if st := e.Stats(); st.Reconnects < 2 {
		t.Errorf("reconnects %d, want >= 2", st.Reconnects)
	}
}

func TestStoreErrors(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 2)
	srv := startCollector(t, pki, store, "127.0.0.1:0")
	e := newExporter(t, pki, t.TempDir(), []string{srv.Addr().String()}, nil, export.Dependencies{})
	waitFor(t, 5*time.Second, "connect", func() bool {
		st := e.Stats()
		return st.Connected && st.Acked == st.Batches
	})
	before := e.Stats().Acked // the first (stats) batch may already be acked
	store.SetFailing(true)
	w0 := store.Writes()
	feed(t, e, tr)
	waitFor(t, 5*time.Second, "failed writes", func() bool { return store.Writes() >= w0+3 })
	if st := e.Stats(); st.Acked != before {
		t.Fatalf("acked %d (was %d) while the store fails", st.Acked, before)
	}
	if s, _ := srv.Sensor(sensorID); s.StoreErrors == 0 {
		t.Error("store errors not counted")
	}
	store.SetFailing(false)
	waitFor(t, 10*time.Second, "catch up", func() bool { return complete(store, tr, 1) })
	checkExactlyOnce(t, store, tr, 1)
}

func TestSpoolFullDropsOldestAndRestart(t *testing.T) {
	pki := linktest.NewPKI(t, sensorID)
	store := linktest.NewStore()
	tr := linktest.CaptureTraffic(t, sensorID, 1)
	addr := freeAddr(t)
	dir := t.TempDir()
	small := func(c *export.Config) {
		c.Spool.SegmentBytes, c.Spool.MaxBytes = 4096, 3*4096
	}
	e := newExporter(t, pki, dir, []string{addr}, small, export.Dependencies{})
	for range 5 {
		feed(t, e, tr)
	}
	if err := e.Stop(); err != nil { // sensor restart: everything is on disk
		t.Fatal(err)
	}
	st1 := e.Stats()
	if st1.Spool.DroppedBatches == 0 {
		t.Fatalf("spool never filled: %+v", st1.Spool)
	}
	startCollector(t, pki, store, addr)
	e2 := newExporter(t, pki, dir, []string{addr}, small, export.Dependencies{})
	waitFor(t, 10*time.Second, "drain after restart", func() bool {
		st := e2.Stats()
		return st.Connected && st.Spool.Batches == 0 && st.QueueBatches == 0
	})
	var got []linktest.Batch
	for _, b := range store.Batches(sensorID) {
		if b.Seq <= st1.Batches { // not the new process's own batches
			got = append(got, b)
		}
	}
	// Every batch closed before the restart is either stored or counted
	// as dropped, never both, never neither.
	if uint64(len(got))+st1.Spool.DroppedBatches != st1.Batches {
		t.Fatalf("stored %d + dropped %d != closed %d", len(got), st1.Spool.DroppedBatches, st1.Batches)
	}
	// The dropped ones are the oldest.
	if len(got) > 0 && got[0].Seq != st1.Spool.DroppedBatches+1 {
		t.Errorf("first stored seq %d, want %d", got[0].Seq, st1.Spool.DroppedBatches+1)
	}
	// Sequence numbers continue after the restart.
	feed(t, e2, tr)
	waitFor(t, 5*time.Second, "new batches", func() bool {
		b := store.Batches(sensorID)
		return complete(store, tr, 1) && b[len(b)-1].Seq > st1.Batches
	})
}
