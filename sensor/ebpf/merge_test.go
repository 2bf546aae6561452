package ebpf

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
)

// fakeKernel is a Kernel over a Go map.
type fakeKernel struct {
	mu sync.Mutex
	m  map[flow.Key]FlowCounters
}

func (f *fakeKernel) Lookup(k *flow.Key) (FlowCounters, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[*k]
	return c, ok, nil
}

func (f *fakeKernel) Delete(keys []flow.Key) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := f.m[k]; ok {
			delete(f.m, k)
			n++
		}
	}
	return n, nil
}

func (f *fakeKernel) Walk(fn func(*flow.Key, *FlowCounters)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, c := range f.m {
		fn(&k, &c)
	}
	return nil
}

type lastSink struct{ recs []flow.Record }

func (s *lastSink) AddRecord(r *flow.Record) error { s.recs = append(s.recs, *r); return nil }
func (s *lastSink) AddBlock([]byte) error          { return nil }

func tuple(sport, dport uint16, proto uint8) flow.Tuple {
	return flow.Tuple{Src: flow.AddrFrom4([4]byte{10, 0, 0, 9}), Dst: flow.AddrFrom4([4]byte{10, 0, 0, 1}),
		SrcPort: sport, DstPort: dport, Proto: proto, Family: flow.FamilyIPv4}
}

// TestMergeSink checks the merge rules against a fake kernel: the
// initiator's direction maps to the right key direction, the larger seen
// count wins and the difference becomes budget cuts, flags are ORed,
// stored counters stay userspace's, the entry goes on the final record,
// and untracked or unknown flows pass unchanged.
func TestMergeSink(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	tup := tuple(40000, 80, flow.ProtoTCP) // Src 10.0.0.9 > Dst: runs B->A of the key
	k, fwd := tup.Key()
	if fwd {
		t.Fatal("test tuple should run against the key")
	}
	fk := &fakeKernel{m: map[flow.Key]FlowCounters{k: {Dir: [2]DirCounters{
		{Packets: 900, Bytes: 1_300_000, TCPFlags: flow.TCPFlagACK | flow.TCPFlagPSH, Last: t0.Add(9 * time.Second)}, // A->B: server to client
		{Packets: 500, Bytes: 33_000, TCPFlags: flow.TCPFlagACK | flow.TCPFlagSYN, Last: t0.Add(8 * time.Second)},
	}}}}
	out := &lastSink{}
	m := NewMergeSink(out, fk)
	rec := flow.Record{Tuple: tup, Start: t0, End: t0.Add(time.Second), Reason: flow.ReasonActive, BudgetCut: 3,
		Source:      flow.DirStats{Packets: 50, Bytes: 4000, StoredPackets: 48, StoredBytes: 3900, TCPFlags: flow.TCPFlagSYN, First: t0, Last: t0.Add(time.Second)},
		Destination: flow.DirStats{Packets: 60, Bytes: 70000, StoredPackets: 45, StoredBytes: 65536, TCPFlags: flow.TCPFlagSYN | flow.TCPFlagACK, First: t0, Last: t0.Add(time.Second)},
	}
	if err := m.AddRecord(&rec); err != nil {
		t.Fatal(err)
	}
	got := out.recs[0]
	if got.Source.Packets != 500 || got.Source.Bytes != 33_000 || got.Destination.Packets != 900 || got.Destination.Bytes != 1_300_000 {
		t.Errorf("seen counters not merged by direction: %+v / %+v", got.Source, got.Destination)
	}
	if got.Source.StoredPackets != 48 || got.Destination.StoredBytes != 65536 {
		t.Errorf("stored counters changed: %+v / %+v", got.Source, got.Destination)
	}
	if want := uint64(3 + (500 - 50) + (900 - 60)); got.BudgetCut != want {
		t.Errorf("budget cut %d, want %d", got.BudgetCut, want)
	}
	if got.Destination.TCPFlags != flow.TCPFlagSYN|flow.TCPFlagACK|flow.TCPFlagPSH || !got.End.Equal(t0.Add(9*time.Second)) {
		t.Errorf("flags %x end %v", got.Destination.TCPFlags, got.End)
	}
	if len(fk.m) != 1 {
		t.Fatal("an update record deleted the kernel entry")
	}
	rec.Reason = flow.ReasonFIN
	if err := m.AddRecord(&rec); err != nil {
		t.Fatal(err)
	}
	if len(fk.m) != 0 {
		t.Error("the final record left the kernel entry")
	}
	icmp := flow.Record{Tuple: tuple(8, 0, flow.ProtoICMP), Reason: flow.ReasonFIN, Source: flow.DirStats{Packets: 2}}
	if err := m.AddRecord(&icmp); err != nil {
		t.Fatal(err)
	}
	other := flow.Record{Tuple: tuple(1, 2, flow.ProtoUDP), Reason: flow.ReasonIdleTimeout, Source: flow.DirStats{Packets: 7}}
	if err := m.AddRecord(&other); err != nil {
		t.Fatal(err)
	}
	if out.recs[2].Source.Packets != 2 || out.recs[3].Source.Packets != 7 {
		t.Error("records without a kernel entry changed")
	}
	merged, unmatched, deleted, _ := m.Stats()
	if merged != 2 || unmatched != 1 || deleted != 1 {
		t.Errorf("stats merged %d unmatched %d deleted %d", merged, unmatched, deleted)
	}
}

// TestDrainIdle deletes only entries idle past the cutoff.
func TestDrainIdle(t *testing.T) {
	now := time.Now()
	a, _ := tuple(1, 2, flow.ProtoUDP).Key()
	b, _ := tuple(3, 4, flow.ProtoUDP).Key()
	fk := &fakeKernel{m: map[flow.Key]FlowCounters{
		a: {Dir: [2]DirCounters{{Last: now.Add(-time.Hour)}, {Last: now.Add(-2 * time.Hour)}}},
		b: {Dir: [2]DirCounters{{Last: now.Add(-time.Hour)}, {Last: now}}},
	}}
	var entries, drained atomic.Uint64
	n, err := drainIdle(fk, now.Add(-time.Minute), &entries, &drained)
	if err != nil || n != 1 || entries.Load() != 2 || drained.Load() != 1 {
		t.Fatalf("drained %d (%v), entries %d", n, err, entries.Load())
	}
	if _, ok := fk.m[b]; !ok {
		t.Error("drained the active entry")
	}
}

// TestPins covers addresses, networks, ports and Community IDs.
func TestPins(t *testing.T) {
	tup := tuple(40000, 443, flow.ProtoTCP)
	k, _ := tup.Key()
	cid := flow.CommunityID(0, tup)
	for _, c := range []struct {
		cfg  PinConfig
		want bool
	}{
		{PinConfig{}, false},
		{PinConfig{Nets: []string{"10.0.0.1"}}, true},
		{PinConfig{Nets: []string{"10.0.0.0/24"}}, true},
		{PinConfig{Nets: []string{"10.0.1.0/24", "2001:db8::/32"}}, false},
		{PinConfig{Ports: []uint16{443}}, true},
		{PinConfig{Ports: []uint16{80}}, false},
		{PinConfig{CommunityIDs: []string{cid}}, true},
		{PinConfig{CommunityIDs: []string{flow.CommunityID(1, tup)}}, false},
	} {
		p, err := NewPins(c.cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(&k); got != c.want {
			t.Errorf("%+v: match %v", c.cfg, got)
		}
	}
	if _, err := NewPins(PinConfig{Nets: []string{"nope"}}, 0); err == nil {
		t.Error("bad net accepted")
	}
}

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MaxFlows = 1
	if c.Validate() == nil {
		t.Error("max_flows 1 accepted")
	}
}
