package flowtable

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestPrefetchChangesNothing runs echo-connections.pcap.gz through two
// tables, one of them prefetched two and one packets ahead as a batching
// caller would: both emit the same records.
func TestPrefetchChangesNothing(t *testing.T) {
	infos, _ := packetInfos(readCapture(t, filepath.Join(testenv.Pcaps(t), "zeek", "echo-connections.pcap.gz")))
	run := func(ahead bool) []flow.Record {
		tab, r := newTable(t, Config{SensorID: "s"})
		tab.seed = 1 // same index layout in both tables
		for i := range infos {
			if ahead {
				if i+3 < len(infos) {
					tab.PrefetchLinks(&infos[i+3].Tuple)
				}
				if i+2 < len(infos) {
					tab.PrefetchSlot(&infos[i+2].Tuple)
				}
				if i+1 < len(infos) {
					tab.PrefetchEntry(&infos[i+1].Tuple)
				}
			}
			p := infos[i]
			tab.Advance(p.Time)
			tab.Packet(&p)
		}
		tab.Flush(flow.ReasonEndOfCapture)
		for i := range r.recs {
			r.recs[i].ID = flow.ID{} // each table draws its own ID counter start
		}
		return r.recs
	}
	plain, ahead := run(false), run(true)
	if len(plain) == 0 || !reflect.DeepEqual(plain, ahead) {
		t.Fatalf("prefetching changed the records: %d vs %d records", len(plain), len(ahead))
	}
}

// TestPrefetchNoAllocs: the hints allocate nothing.
func TestPrefetchNoAllocs(t *testing.T) {
	tab, _ := newTable(t, Config{})
	tup := tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 443)
	feed(tab, tup, 1, syn, 60)
	if n := testing.AllocsPerRun(100, func() {
		tab.PrefetchSlot(&tup)
		tab.PrefetchEntry(&tup)
		tab.PrefetchLinks(&tup)
	}); n != 0 {
		t.Fatalf("%v allocations per prefetch", n)
	}
}

// TestPrefetchLinksFindsOpenFlows: PrefetchLinks returns the state of an
// open flow, in either direction, whether or not it is the most recently
// active one, and nil for a flow that is not open.
func TestPrefetchLinksFindsOpenFlows(t *testing.T) {
	tab, _ := newTable(t, Config{})
	a := tuple(flow.ProtoTCP, "10.0.0.1", 1000, "10.0.0.2", 443)
	b := tuple(flow.ProtoUDP, "10.0.0.3", 53000, "10.0.0.4", 53)
	stA, _ := feed(tab, a, 1, syn, 60)
	feed(tab, b, 2, 0, 80)
	if got := tab.PrefetchLinks(&a); got != stA {
		t.Fatalf("PrefetchLinks(a) = %p, want a's state %p", got, stA)
	}
	rev := a.Reverse()
	if got := tab.PrefetchLinks(&rev); got != stA {
		t.Fatalf("PrefetchLinks(reverse of a) = %p, want %p", got, stA)
	}
	if tab.PrefetchLinks(&b) == nil {
		t.Fatal("PrefetchLinks(b), the most recent flow: nil")
	}
	c := tuple(flow.ProtoUDP, "10.0.0.5", 1, "10.0.0.6", 2)
	if tab.PrefetchLinks(&c) != nil {
		t.Fatal("PrefetchLinks of a flow not open: not nil")
	}
	if tab.Len() != 2 {
		t.Fatalf("%d open flows after PrefetchLinks, want 2", tab.Len())
	}
}
