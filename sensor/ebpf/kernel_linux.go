//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"time"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tapir-sensor/tapir/bpf"
	"github.com/tapir-sensor/tapir/flow"
)

// mapKernel is the Kernel over the loaded flow map. Monotonic kernel
// times are converted with the offset measured when it was made.
type mapKernel struct {
	flows    *cebpf.Map
	monoWall int64 // wall ns minus monotonic ns
	batch    int
}

var _ Kernel = (*mapKernel)(nil)

func newMapKernel(m *cebpf.Map) *mapKernel {
	return &mapKernel{flows: m, monoWall: monoToWallOffset(), batch: 4096}
}

// monoToWallOffset returns wall-clock minus CLOCK_MONOTONIC in ns.
func monoToWallOffset() int64 {
	var ts unix.Timespec
	before := time.Now().UnixNano()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	after := time.Now().UnixNano()
	return (before+after)/2 - ts.Nano()
}

func keyToBPF(k *flow.Key) bpf.TapirFlowKey {
	return bpf.TapirFlowKey{A: k.A, B: k.B, PortA: k.PortA, PortB: k.PortB,
		Vlan: k.VLAN, InnerVlan: k.InnerVLAN, Proto: k.Proto, Family: k.Family, Mirror: k.Mirror}
}

func keyFromBPF(b *bpf.TapirFlowKey) flow.Key {
	return flow.Key{A: b.A, B: b.B, PortA: b.PortA, PortB: b.PortB,
		VLAN: b.Vlan, InnerVLAN: b.InnerVlan, Proto: b.Proto, Family: b.Family, Mirror: b.Mirror}
}

func (m *mapKernel) wall(mono uint64) time.Time {
	if mono == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(mono)+m.monoWall).UTC()
}

func (m *mapKernel) counters(v *bpf.TapirFlowVal) FlowCounters {
	var c FlowCounters
	for i := range c.Dir {
		d := &v.Dir[i]
		c.Dir[i] = DirCounters{Packets: d.Packets, Bytes: d.Bytes, First: m.wall(d.FirstNs),
			Last: m.wall(d.LastNs), TCPFlags: uint8(d.TcpFlags),
			StoredPackets: d.StoredPackets, StoredBytes: d.StoredBytes}
	}
	return c
}

// Lookup implements Kernel.
func (m *mapKernel) Lookup(k *flow.Key) (FlowCounters, bool, error) {
	bk := keyToBPF(k)
	var v bpf.TapirFlowVal
	if err := m.flows.Lookup(&bk, &v); err != nil {
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			return FlowCounters{}, false, nil
		}
		return FlowCounters{}, false, fmt.Errorf("lookup flow: %w", err)
	}
	return m.counters(&v), true, nil
}

// Delete implements Kernel.
func (m *mapKernel) Delete(keys []flow.Key) (int, error) {
	bks := make([]bpf.TapirFlowKey, len(keys))
	for i := range keys {
		bks[i] = keyToBPF(&keys[i])
	}
	if n, err := m.flows.BatchDelete(bks, nil); err == nil {
		return n, nil
	}
	// A key deleted meanwhile stops a batch: delete one by one.
	n := 0
	for i := range bks {
		if err := m.flows.Delete(&bks[i]); err == nil {
			n++
		} else if !errors.Is(err, cebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("delete flow: %w", err)
		}
	}
	return n, nil
}

// Walk implements Kernel with batch lookups.
func (m *mapKernel) Walk(fn func(k *flow.Key, c *FlowCounters)) error {
	keys := make([]bpf.TapirFlowKey, m.batch)
	vals := make([]bpf.TapirFlowVal, m.batch)
	var cursor cebpf.MapBatchCursor
	for {
		n, err := m.flows.BatchLookup(&cursor, keys, vals, nil)
		for i := 0; i < n; i++ {
			k := keyFromBPF(&keys[i])
			c := m.counters(&vals[i])
			fn(&k, &c)
		}
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk flows: %w", err)
		}
	}
}
