package hbase

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsuna/gohbase"
	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/plan"
	"github.com/tapir-sensor/tapir/storage/rowkey"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// countingClient counts the calls a Store makes that HBase cannot batch
// (reads and check-and-puts) and the puts.
type countingClient struct {
	gohbase.Client
	gets, cas, puts atomic.Int64
}

func (c *countingClient) Get(g *hrpc.Get) (*hrpc.Result, error) {
	c.gets.Add(1)
	return c.Client.Get(g)
}

func (c *countingClient) Put(p *hrpc.Mutate) (*hrpc.Result, error) {
	c.puts.Add(1)
	return c.Client.Put(p)
}

func (c *countingClient) CheckAndPut(p *hrpc.Mutate, family, qualifier string, expected []byte) (bool, error) {
	c.cas.Add(1)
	return c.Client.CheckAndPut(p, family, qualifier, expected)
}

// openCounting opens a store on a new table of the HBase of
// TAPIR_HBASE_ZK (dropped after the test) whose client counts calls.
func openCounting(t *testing.T) (*Store, *countingClient) {
	t.Helper()
	zk := os.Getenv("TAPIR_HBASE_ZK")
	if zk == "" {
		testenv.SkipOrFail(t, "TAPIR_HBASE_ZK is not set (start HBase with make services-up)")
	}
	cfg := DefaultConfig()
	cfg.ZooKeeper = zk
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.Table = "tapir_test_" + hex.EncodeToString(b[:])
	cfg.SaltRegions = 4
	s, err := Open(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := DropTable(ctx, cfg.ZooKeeper, cfg.ZKRoot, cfg.Table); err != nil {
			t.Logf("drop %s: %v", cfg.Table, err)
		}
	})
	c := &countingClient{Client: s.client}
	s.client = c
	return s, c
}

// TestWriteRoundTrips: a batch costs a fixed number of reads and
// check-and-puts (its dedupe marker, the sensor's durable sequence, the
// longest block span), whatever the number of flows in it: flow index
// rows and short flows' records are plain puts, batched by the client.
// The next batch of the same flows puts only the ref cells that widen.
// Lookups see the union of both batches.
func TestWriteRoundTrips(t *testing.T) {
	s, c := openCounting(t)
	flows := storagetest.LoadFlows(t, "zeek/ssh.pcap") // 23 TCP connections
	ins := storagetest.Instances(flows, "sensor-a", 0, 8)
	ctx := context.Background()
	// Batch 1: the first half of every flow's blocks and its record;
	// batch 2: the rest.
	var b1, b2 storage.Batch
	b1 = storage.Batch{SensorID: "sensor-a", Seq: 1}
	b2 = storage.Batch{SensorID: "sensor-a", Seq: 2}
	for _, in := range ins {
		h := (len(in.Blocks) + 1) / 2
		b1.Blocks = append(b1.Blocks, in.Blocks[:h]...)
		b2.Blocks = append(b2.Blocks, in.Blocks[h:]...)
		b1.Records = append(b1.Records, in.Record)
	}
	for i, b := range []*storage.Batch{&b1, &b2} {
		g0, c0, p0 := c.gets.Load(), c.cas.Load(), c.puts.Load()
		if ok, err := s.Write(ctx, b); err != nil || !ok {
			t.Fatalf("write %d: %v %v", b.Seq, ok, err)
		}
		gets, cas, puts := c.gets.Load()-g0, c.cas.Load()-c0, c.puts.Load()-p0
		t.Logf("batch %d: %d flows, %d blocks, %d records: %d gets, %d check-and-puts, %d puts",
			b.Seq, len(ins), len(b.Blocks), len(b.Records), gets, cas, puts)
		if gets+cas > 6 {
			t.Errorf("batch %d: %d gets + %d check-and-puts for %d flows, want at most 6 in all", b.Seq, gets, cas, len(ins))
		}
		// Each block: its row and its retention row; batch 1: each
		// flow's record and at most 3 cells of each of its 2 ref rows;
		// batch 2: only "h" of each ref row widens.
		want := int64(2 * len(b.Blocks))
		if i == 0 {
			want += int64(len(ins)) * (1 + 2*3)
		} else {
			want += int64(len(ins)) * 2
		}
		if puts > want {
			t.Errorf("batch %d: %d puts, want at most %d", b.Seq, puts, want)
		}
	}
	for _, in := range ins {
		first := time.Unix(0, in.Blocks[0].Meta.First)
		last := time.Unix(0, in.Blocks[len(in.Blocks)-1].Meta.Last)
		if in.Record.Start.Before(first) {
			first = in.Record.Start
		}
		if in.Record.End.After(last) {
			last = in.Record.End
		}
		for _, id := range []string{in.ID.String(), in.Record.CommunityID} {
			refs, err := s.LookupFlow(ctx, id, time.Time{}, time.Time{})
			if err != nil || len(refs) != 1 {
				t.Fatalf("lookup %s: %v %v", id, refs, err)
			}
			if !refs[0].First.Equal(first) || !refs[0].Last.Equal(last) || refs[0].CommunityID != in.Record.CommunityID {
				t.Errorf("lookup %s: %v..%v %q, want %v..%v %q", id, refs[0].First, refs[0].Last, refs[0].CommunityID,
					first, last, in.Record.CommunityID)
			}
		}
	}
}

// TestReadsRowsOfCheckAndPutLayout: rows written the way earlier versions
// wrote them (one merged "v" cell at the server's clock) still count: a
// wider stored span survives narrower new writes, and a stored record of
// a newer segment is not replaced by an older report, while a newer one
// replaces it.
func TestReadsRowsOfCheckAndPutLayout(t *testing.T) {
	s, _ := openCounting(t)
	flows := storagetest.LoadFlows(t, "zeek/ssh.pcap")
	in := storagetest.NewInstance(&flows[0], "sensor-a", 1, 0, 8)
	ctx := context.Background()
	wide := storage.FlowRef{Key: flows[0].Key, FlowID: in.ID, SensorID: "sensor-a", CommunityID: in.Record.CommunityID,
		First: in.Record.Start.Add(-time.Hour), Last: in.Record.End.Add(time.Hour)}
	cid, _ := rowkey.ParseCommunityID(in.Record.CommunityID)
	legacy := func(key, v []byte) {
		t.Helper()
		if err := s.put(ctx, &cellPut{key: key, family: familyIndex, cells: map[string][]byte{qualifier: v}}); err != nil {
			t.Fatal(err)
		}
	}
	legacy(rowkey.TableKey(rowkey.TableFlowID, rowkey.AppendFlowIDKey(nil, in.ID)), rowkey.AppendRef(nil, &wide))
	legacy(rowkey.TableKey(rowkey.TableCommunity, rowkey.AppendCommunityKey(nil, &cid, in.ID)), rowkey.AppendRef(nil, &wide))
	newer := in.Record
	newer.Segment = 5
	v, err := plan.EncodeRecord(nil, &newer)
	if err != nil {
		t.Fatal(err)
	}
	legacy(s.layout.RecordKey(&newer), v)

	older := in.Record
	older.Segment = 3
	b := &storage.Batch{SensorID: "sensor-a", Seq: 1, Blocks: in.Blocks, Records: []flow.Record{older}}
	if ok, err := s.Write(ctx, b); err != nil || !ok {
		t.Fatalf("write: %v %v", ok, err)
	}
	for _, id := range []string{in.ID.String(), in.Record.CommunityID} {
		refs, err := s.LookupFlow(ctx, id, time.Time{}, time.Time{})
		if err != nil || len(refs) != 1 || !refs[0].First.Equal(wide.First) || !refs[0].Last.Equal(wide.Last) {
			t.Fatalf("lookup %s: %v %v, want the stored span %v..%v", id, refs, err, wide.First, wide.Last)
		}
	}
	segment := func() uint32 {
		t.Helper()
		var got []uint32
		if err := s.ScanRecords(ctx, in.Record.Start.Add(-time.Minute), in.Record.End.Add(time.Minute), func(r *flow.Record) error {
			if r.ID == in.ID {
				got = append(got, r.Segment)
			}
			return nil
		}); err != nil || len(got) != 1 {
			t.Fatalf("scan records: %v %v", got, err)
		}
		return got[0]
	}
	if got := segment(); got != 5 {
		t.Fatalf("segment %d after an older report, want the stored 5", got)
	}
	latest := in.Record
	latest.Segment = 7
	b = &storage.Batch{SensorID: "sensor-a", Seq: 2, Records: []flow.Record{latest}}
	if ok, err := s.Write(ctx, b); err != nil || !ok {
		t.Fatalf("write: %v %v", ok, err)
	}
	if got := segment(); got != 7 {
		t.Fatalf("segment %d after a newer report, want 7", got)
	}
}
