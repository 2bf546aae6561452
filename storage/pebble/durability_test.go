package pebble

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

var ctx = context.Background()

func batchOf(sensor string, seq uint64, ins []*storagetest.Instance) *storage.Batch {
	b := &storage.Batch{SensorID: sensor, Seq: seq}
	for _, in := range ins {
		b.Blocks = append(b.Blocks, in.Blocks...)
		b.Records = append(b.Records, in.Record)
	}
	return b
}

// stored returns how many of the batch's blocks the store holds.
func stored(t *testing.T, s *Store, b *storage.Batch) int {
	t.Helper()
	n := 0
	for _, want := range b.Blocks {
		err := s.ScanBlocks(ctx, want.Meta.Key, time.Unix(0, want.Meta.First), time.Unix(0, want.Meta.Last), func(got *storage.Block) error {
			if bytes.Equal(got.Encoded, want.Encoded) {
				n++
			}
			return nil
		})
		if err != nil && !errors.Is(err, storage.ErrPacketsExpired) {
			t.Fatal(err)
		}
	}
	return n
}

// keptBlocks counts the blocks of ins that an Expire of those older than
// cut keeps.
func keptBlocks(ins []*storagetest.Instance, cut time.Time) int {
	var kept int
	for _, in := range ins {
		for _, blk := range in.Blocks {
			if blk.Meta.Last >= cut.UnixNano() {
				kept++
			}
		}
	}
	return kept
}

func TestReopenKeepsEverything(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	ins := storagetest.Instances(flows, "sensor-a", 0, 2)
	dir := t.TempDir()
	s := openTest(t, dir, testConfig())
	b := batchOf("sensor-a", 5, ins)
	if ok, err := s.Write(ctx, b); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// Expire the first flow's blocks so the watermark must survive too.
	cut := time.Unix(0, ins[0].Blocks[len(ins[0].Blocks)-1].Meta.Last+1)
	st, err := s.Expire(ctx, cut, 0)
	if err != nil || st.Blocks == 0 {
		t.Fatalf("expire: %+v %v", st, err)
	}
	bytesBefore := s.DataBytes()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, testConfig())
	defer s.Close()
	if s.DataBytes() != bytesBefore {
		t.Fatalf("data bytes %d after reopen, %d before", s.DataBytes(), bytesBefore)
	}
	if seq, err := s.DurableSeq(ctx, "sensor-a", 0); seq != 5 || err != nil {
		t.Fatalf("durable seq %d %v", seq, err)
	}
	if ok, err := s.Write(ctx, b); ok || err != nil {
		t.Fatalf("batch re-applied after reopen: %v %v", ok, err)
	}
	if err := s.ScanBlocks(ctx, flows[0].Key, time.Time{}, time.Time{}, func(*storage.Block) error { return nil }); !errors.Is(err, storage.ErrPacketsExpired) {
		t.Fatalf("expired flow after reopen: %v", err)
	}
	if n, kept := stored(t, s, b), keptBlocks(ins, cut); n != kept {
		t.Fatalf("%d blocks after reopen, want %d", n, kept)
	}
	for _, in := range ins {
		refs, err := s.LookupFlow(ctx, in.Record.CommunityID, time.Time{}, time.Time{})
		if err != nil || len(refs) != 1 || refs[0].FlowID != in.ID {
			t.Fatalf("lookup after reopen: %+v %v", refs, err)
		}
	}
	// Another layout is refused.
	cfg := testConfig()
	cfg.TimeBucket = time.Hour
	if _, err := Open(dir+"-x", cfg, nil, nil); err != nil {
		t.Fatalf("fresh dir: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, cfg, nil, nil); !errors.Is(err, ErrLayout) {
		t.Fatalf("open with another time bucket: %v, want ErrLayout", err)
	}
}

func TestDiskFullGuard(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	cfg := testConfig()
	cfg.MinFreeBytes = 1 << 60 // more than any disk has free
	s := openTest(t, t.TempDir(), cfg)
	defer s.Close()
	b := batchOf("sensor-a", 1, storagetest.Instances(flows, "sensor-a", 0, 2))
	if ok, err := s.Write(ctx, b); ok || !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write on a full disk: %v %v, want ErrDiskFull", ok, err)
	}
	if seq, _ := s.DurableSeq(ctx, "sensor-a", 0); seq != 0 || stored(t, s, b) != 0 {
		t.Fatal("refused batch left data behind")
	}
}

// TestWALWriteError makes every write to Pebble's log fail, as a full
// disk does: Write must return an error (not panic, not exit), and after
// reopening the batch is either wholly there or wholly absent.
// failingLog wraps the OS file system so that, while armed, every write,
// sync or flush of a Pebble log fails (counted in injected).
func failingLog(armed *atomic.Bool, injected *atomic.Int64) vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		if armed.Load() && strings.HasSuffix(path, ".log") &&
			(op == errorfs.OpFileWrite || op == errorfs.OpFileWriteAt || op == errorfs.OpFileSync || op == errorfs.OpFileFlush) {
			injected.Add(1)
			return errorfs.ErrInjected
		}
		return nil
	}))
}

// checkRetry checks that the batch whose write failed is wholly applied
// (durable seq 2) or not at all, after a reopen, and that the sensor's
// retry then stores it or is deduplicated.
func checkRetry(t *testing.T, s *Store, second *storage.Batch, seq uint64) {
	t.Helper()
	n := stored(t, s, second)
	switch {
	case seq == 1 && n == 0:
		// Not applied: the sensor's retry will write it.
		if ok, err := s.Write(ctx, second); !ok || err != nil {
			t.Fatalf("retry: %v %v", ok, err)
		}
		if n := stored(t, s, second); n != len(second.Blocks) {
			t.Fatalf("retry stored %d of %d blocks", n, len(second.Blocks))
		}
	case seq == 2 && n == len(second.Blocks):
		// The log reached the disk before the failure: wholly applied, and
		// the retry is deduplicated.
		if ok, err := s.Write(ctx, second); ok || err != nil {
			t.Fatalf("retry of an applied batch: %v %v", ok, err)
		}
	default:
		t.Fatalf("partial batch after reopen: durable seq %d, %d of %d blocks", seq, n, len(second.Blocks))
	}
}

func TestWALWriteError(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	ins := storagetest.Instances(flows, "sensor-a", 0, 2)
	half := len(ins) / 2
	var armed atomic.Bool
	var injected atomic.Int64
	fs := failingLog(&armed, &injected)
	dir := t.TempDir()
	cfg := testConfig()
	cfg.FS = fs
	s := openTest(t, dir, cfg)
	first, second := batchOf("sensor-a", 1, ins[:half]), batchOf("sensor-a", 2, ins[half:])
	if ok, err := s.Write(ctx, first); !ok || err != nil {
		t.Fatal(ok, err)
	}
	armed.Store(true)
	ok, err := s.Write(ctx, second)
	if ok || err == nil {
		t.Fatalf("write with failing log: applied=%v err=%v", ok, err)
	}
	if injected.Load() == 0 {
		t.Fatal("no error was injected")
	}
	t.Logf("write error: %v", err)
	if _, err := s.Write(ctx, batchOf("sensor-a", 3, ins[:1])); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after failure: %v, want ErrFailed", err)
	}
	armed.Store(false)
	_ = s.Close() // may report the log error again

	s = openTest(t, dir, testConfig())
	defer s.Close()
	if n := stored(t, s, first); n != len(first.Blocks) {
		t.Fatalf("first batch: %d of %d blocks after reopen", n, len(first.Blocks))
	}
	seq, err := s.DurableSeq(ctx, "sensor-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRetry(t, s, second, seq)
	refs, err := s.LookupFlow(ctx, ins[half].Record.CommunityID, time.Time{}, time.Time{})
	if err != nil || len(refs) != 1 || refs[0].Key != flows[half].Key {
		t.Fatalf("lookup after retry: %+v %v", refs, err)
	}
}
