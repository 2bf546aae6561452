package flowtable

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config (all defaults): %v", err)
	}
	for _, bad := range []Config{{MaxFlows: -1}, {MaxFlows: maxMaxFlows + 1}, {IdleTimeout: -1}, {BudgetBytes: -1}, {SnapLen: -1}, {MaxFragments: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

const sec = int64(time.Second)

func tuple(proto uint8, src string, sp uint16, dst string, dp uint16) flow.Tuple {
	s, fam := flow.AddrFromNetip(netip.MustParseAddr(src))
	d, _ := flow.AddrFromNetip(netip.MustParseAddr(dst))
	return flow.Tuple{Src: s, Dst: d, SrcPort: sp, DstPort: dp, Proto: proto, Family: fam}
}

// recorder collects copies of the records a table emits.
type recorder struct{ recs []flow.Record }

func (r *recorder) on(rec *flow.Record, _ *int) { r.recs = append(r.recs, *rec) }

func newTable(t *testing.T, cfg Config) (*Table[int], *recorder) {
	t.Helper()
	r := &recorder{}
	tab, err := New[int](cfg, nil, r.on)
	if err != nil {
		t.Fatal(err)
	}
	return tab, r
}

// feed sends one packet at time at (ns) after advancing to it.
func feed(tab *Table[int], tup flow.Tuple, at int64, flags uint8, size int) (*int, int) {
	tab.Advance(at)
	p := PacketInfo{Tuple: tup, Time: at, WireLen: size, CapLen: size, TCPFlags: flags}
	return tab.Packet(&p)
}

const (
	syn    = flow.TCPFlagSYN
	synack = flow.TCPFlagSYN | flow.TCPFlagACK
	ack    = flow.TCPFlagACK
	fin    = flow.TCPFlagFIN | flow.TCPFlagACK
	rst    = flow.TCPFlagRST
)

func TestIdleTimeout(t *testing.T) {
	tab, r := newTable(t, Config{IdleTimeout: 60 * time.Second, UpdateInterval: -1})
	u := tuple(flow.ProtoUDP, "10.0.0.1", 5000, "10.0.0.2", 53)
	feed(tab, u, 0, 0, 100)
	feed(tab, u.Reverse(), sec, 0, 200)
	tab.Advance(60 * sec)
	if len(r.recs) != 0 {
		t.Fatalf("ended before the idle timeout: %+v", r.recs)
	}
	tab.Advance(61 * sec)
	if len(r.recs) != 1 {
		t.Fatalf("%d records after idle timeout", len(r.recs))
	}
	rec := r.recs[0]
	if rec.Reason != flow.ReasonIdleTimeout || rec.Tuple != u || rec.Source.Packets != 1 || rec.Destination.Bytes != 200 ||
		rec.Start.UnixNano() != 0 || rec.End.UnixNano() != sec || rec.Segment != 0 {
		t.Errorf("record %+v", rec)
	}
	if rec.CommunityID != flow.CommunityID(0, u) {
		t.Errorf("community id %s", rec.CommunityID)
	}
	feed(tab, u, 62*sec, 0, 100)
	tab.Flush(flow.ReasonEndOfCapture)
	if len(r.recs) != 2 || r.recs[1].ID == rec.ID || r.recs[1].Reason != flow.ReasonEndOfCapture || r.recs[1].CommunityID != rec.CommunityID {
		t.Errorf("second instance %+v", r.recs[1:])
	}
	if tab.Len() != 0 {
		t.Errorf("len %d after flush", tab.Len())
	}
}

func TestActiveTimeoutAndUpdates(t *testing.T) {
	tab, r := newTable(t, Config{UpdateInterval: 10 * time.Second, ActiveTimeout: 35 * time.Second})
	u := tuple(flow.ProtoUDP, "10.0.0.1", 5000, "10.0.0.2", 9999)
	for s := int64(0); s <= 50; s++ {
		feed(tab, u, s*sec, 0, 100)
	}
	tab.Flush(flow.ReasonEndOfCapture)
	want := []struct {
		reason  flow.EndReason
		segment uint32
		packets uint64
	}{
		{flow.ReasonActive, 0, 10}, // at 10 s: packets 0..9
		{flow.ReasonActive, 1, 20},
		{flow.ReasonActive, 2, 30},
		{flow.ReasonActiveTimeout, 3, 35}, // at 35 s: packets 0..34
		{flow.ReasonActive, 0, 10},        // second instance from 35 s, update at 45 s
		{flow.ReasonEndOfCapture, 1, 16},  // 35..50
	}
	if len(r.recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(r.recs), len(want), r.recs)
	}
	for i, w := range want {
		g := r.recs[i]
		if g.Reason != w.reason || g.Segment != w.segment || g.Source.Packets != w.packets {
			t.Errorf("record %d: reason %v segment %d packets %d, want %v %d %d", i, g.Reason, g.Segment, g.Source.Packets, w.reason, w.segment, w.packets)
		}
		if (i < 4) != (g.ID == r.recs[0].ID) {
			t.Errorf("record %d: id %v (first %v)", i, g.ID, r.recs[0].ID)
		}
	}
	st := tab.Stats()
	if st.Updates != 4 || st.Ended[flow.ReasonActiveTimeout] != 1 || st.Created != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPCloseLingerAndOrientation(t *testing.T) {
	cfg := Config{TCPCloseLinger: 2 * time.Second}
	c := tuple(flow.ProtoTCP, "192.0.2.9", 40000, "192.0.2.1", 80) // client has the higher address
	for _, first := range []string{"syn", "synack", "data-from-server"} {
		t.Run(first, func(t *testing.T) {
			tab, r := newTable(t, cfg)
			ms := int64(time.Millisecond)
			switch first {
			case "syn":
				feed(tab, c, 0, syn, 60)
				feed(tab, c.Reverse(), ms, synack, 60)
			case "synack":
				feed(tab, c.Reverse(), ms, synack, 60)
			case "data-from-server":
				feed(tab, c.Reverse(), ms, ack, 60)
			}
			feed(tab, c, 2*ms, ack, 54)
			feed(tab, c, 3*ms, fin, 54)
			feed(tab, c.Reverse(), 4*ms, fin, 54)
			feed(tab, c, 5*ms, ack, 54)              // trailing ACK lands in the flow
			feed(tab, c.Reverse(), 1000*ms, ack, 54) // still within the linger
			tab.Advance(4*ms + 2*sec - 1)
			if len(r.recs) != 0 {
				t.Fatalf("ended before the linger: %+v", r.recs)
			}
			tab.Advance(4*ms + 2*sec + 200*ms)
			if len(r.recs) != 1 {
				t.Fatalf("%d records", len(r.recs))
			}
			g := r.recs[0]
			wantSrc := c
			if first == "data-from-server" {
				wantSrc = c.Reverse() // no SYN: the first sender is the source
			}
			if g.Reason != flow.ReasonFIN || g.Tuple != wantSrc {
				t.Errorf("reason %v tuple %v, want fin %v", g.Reason, g.Tuple, wantSrc)
			}
			if n := g.Source.Packets + g.Destination.Packets; int(n) != map[string]int{"syn": 7, "synack": 6, "data-from-server": 6}[first] {
				t.Errorf("%d packets", n)
			}
			if first == "syn" && (g.Source.TCPFlags != syn|fin || g.Destination.TCPFlags != synack|fin) {
				t.Errorf("flags %x %x", g.Source.TCPFlags, g.Destination.TCPFlags)
			}
		})
	}
}

func TestRSTAndPortReuse(t *testing.T) {
	tab, r := newTable(t, Config{TCPCloseLinger: 2 * time.Second})
	c := tuple(flow.ProtoTCP, "10.1.1.1", 40000, "10.2.2.2", 443)
	feed(tab, c, 0, syn, 60)
	feed(tab, c.Reverse(), 1, rst, 60)
	feed(tab, c, sec, syn, 60) // reuse inside the linger: the old instance ends at once
	if len(r.recs) != 1 || r.recs[0].Reason != flow.ReasonRST || r.recs[0].Source.Packets != 1 {
		t.Fatalf("after reuse: %+v", r.recs)
	}
	feed(tab, c.Reverse(), sec+1, synack, 60)
	feed(tab, c.Reverse(), sec+2, rst, 60)
	tab.Advance(sec + 2 + 2*sec)
	if len(r.recs) != 2 || r.recs[1].Reason != flow.ReasonRST || r.recs[1].ID == r.recs[0].ID ||
		r.recs[1].Source.Packets != 1 || r.recs[1].Destination.Packets != 2 || r.recs[1].Tuple != c {
		t.Fatalf("second instance: %+v", r.recs[1:])
	}
	// A SYN on a half-closed (one FIN) connection is not a reuse.
	feed(tab, c, 10*sec, syn, 60)
	feed(tab, c, 10*sec+1, fin, 60)
	feed(tab, c, 10*sec+2, syn, 60)
	tab.Flush(flow.ReasonEndOfCapture)
	if len(r.recs) != 3 || r.recs[2].Source.Packets != 3 || r.recs[2].Reason != flow.ReasonEndOfCapture {
		t.Fatalf("half-closed: %+v", r.recs[2:])
	}
}

func TestEvictionLRU(t *testing.T) {
	tab, r := newTable(t, Config{MaxFlows: 3})
	var tups []flow.Tuple
	for i := range 5 {
		tups = append(tups, tuple(flow.ProtoUDP, "10.0.0.1", uint16(1000+i), "10.0.0.2", 53))
	}
	feed(tab, tups[0], 1, 0, 60)
	feed(tab, tups[1], 2, 0, 60)
	feed(tab, tups[2], 3, 0, 60)
	feed(tab, tups[0], 4, 0, 60) // 0 is now more recent than 1 and 2
	feed(tab, tups[3], 5, 0, 60) // evicts 1
	feed(tab, tups[4], 6, 0, 60) // evicts 2
	if len(r.recs) != 2 || r.recs[0].Tuple != tups[1] || r.recs[1].Tuple != tups[2] ||
		r.recs[0].Reason != flow.ReasonEvicted || tab.Len() != 3 {
		t.Fatalf("evicted %+v", r.recs)
	}
	if st := tab.Stats(); st.Evicted() != 2 || st.Active != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestBudgetAndSnapLen(t *testing.T) {
	tab, r := newTable(t, Config{BudgetBytes: 250, SnapLen: 100})
	c := tuple(flow.ProtoUDP, "10.0.0.1", 1000, "10.0.0.2", 2000)
	var got []int
	for i := range 5 {
		_, n := feed(tab, c, int64(i), 0, 150)
		got = append(got, n)
	}
	_, back := feed(tab, c.Reverse(), 10, 0, 80) // the other direction has its own budget
	tab.Flush(flow.ReasonEndOfCapture)
	want := []int{100, 100, 100, 0, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("store lengths %v, want %v", got, want)
		}
	}
	g := r.recs[0]
	if back != 80 || g.Source.StoredPackets != 3 || g.Source.StoredBytes != 300 || g.Source.Bytes != 750 ||
		g.Destination.StoredBytes != 80 || g.BudgetCut != 2 || g.Truncated != 3 {
		t.Errorf("record %+v back %d", g, back)
	}
	if st := tab.Stats(); st.BudgetCutPackets != 2 || st.BudgetCutBytes != 200 || st.TruncatedPackets != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestStatePerFlow(t *testing.T) {
	var ended []int
	tab, err := New[int](Config{}, nil, func(rec *flow.Record, st *int) { ended = append(ended, *st) })
	if err != nil {
		t.Fatal(err)
	}
	a := tuple(flow.ProtoUDP, "10.0.0.1", 1, "10.0.0.2", 2)
	b := tuple(flow.ProtoUDP, "10.0.0.1", 3, "10.0.0.2", 4)
	for i := range 3 {
		p := PacketInfo{Tuple: a, Time: int64(i), WireLen: 60, CapLen: 60}
		st, _ := tab.Packet(&p)
		*st += 1
		p.Tuple = b.Reverse()
		st, _ = tab.Packet(&p)
		*st += 10
	}
	tab.Flush(flow.ReasonEndOfCapture)
	if len(ended) != 2 || ended[0]+ended[1] != 33 || ended[0]*ended[1] != 90 {
		t.Errorf("states at end %v", ended)
	}
	p := PacketInfo{Tuple: a, Time: 5, WireLen: 60, CapLen: 60}
	if st, _ := tab.Packet(&p); *st != 0 {
		t.Errorf("reused slot kept state %d", *st)
	}
}

// TestFloodBounded sends 2M SYNs from distinct random sources into a table
// of 100k flows: it never holds more, and every flow beyond capacity is
// one counted eviction.
func TestFloodBounded(t *testing.T) {
	const maxFlows, n = 100_000, 2_000_000
	evicted := 0
	tab, err := New[struct{}](Config{MaxFlows: maxFlows}, nil, func(rec *flow.Record, _ *struct{}) {
		if rec.Reason == flow.ReasonEvicted {
			evicted++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := tuple(flow.ProtoTCP, "198.51.100.1", 0, "203.0.113.1", 80)
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Uint32() | 1 // odd multiplier: i*perm is a permutation of uint32
	p := PacketInfo{Tuple: dst, WireLen: 60, CapLen: 60, TCPFlags: syn}
	for i := range n {
		v := uint32(i) * perm
		p.Tuple.Src = flow.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		p.Tuple.SrcPort = uint16(rng.Uint32())
		p.Time = int64(i) * 1000 // 1 µs apart: nothing idles out
		tab.Advance(p.Time)
		tab.Packet(&p)
		if tab.Len() > maxFlows {
			t.Fatalf("table holds %d flows", tab.Len())
		}
	}
	st := tab.Stats()
	if st.Created != n || st.Evicted() != n-maxFlows || evicted != n-maxFlows || tab.Len() != maxFlows {
		t.Fatalf("created %d evicted %d (records %d) len %d", st.Created, st.Evicted(), evicted, tab.Len())
	}
	if len(tab.sched.buf) > 4*maxFlows || tab.nslots > maxFlows {
		t.Errorf("queues grew: sched %d slots %d", len(tab.sched.buf), tab.nslots)
	}
}

func TestNoAllocs(t *testing.T) {
	tab, err := New[struct{}](Config{MaxFlows: 1 << 16}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := PacketInfo{Tuple: tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 80), WireLen: 60, CapLen: 60, TCPFlags: ack}
	// Warm up: grow the slab, index and queues, then end everything.
	for i := range 40000 {
		p.Tuple.SrcPort = uint16(i)
		p.Time = int64(i)
		tab.Packet(&p)
	}
	tab.Flush(flow.ReasonEndOfCapture)
	if a := testing.AllocsPerRun(1000, func() { p.Time++; tab.Packet(&p); tab.Advance(p.Time) }); a != 0 {
		t.Errorf("existing flow: %v allocs per packet", a)
	}
	port := uint16(0)
	if a := testing.AllocsPerRun(1000, func() {
		port++
		p.Tuple.SrcPort = port
		p.Time++
		tab.Packet(&p)
	}); a != 0 {
		t.Errorf("new flow: %v allocs per packet", a)
	}
}
