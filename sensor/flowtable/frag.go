package flowtable

import "github.com/tapir-sensor/tapir/flow"

// fragKey identifies one IP datagram: its fragments share it.
type fragKey struct {
	src, dst      flow.Addr
	id            uint32
	proto, family uint8
	vlan, inner   uint16
	mirror        uint32
}

func fragKeyOf(p *PacketInfo) fragKey {
	return fragKey{
		src: p.Tuple.Src, dst: p.Tuple.Dst, id: p.Frag.ID,
		proto: p.Tuple.Proto, family: p.Tuple.Family,
		vlan: p.Tuple.VLAN, inner: p.Tuple.InnerVLAN, mirror: p.Tuple.Mirror,
	}
}

// fragPorts is what the tracker remembers of a datagram's first fragment.
type fragPorts struct {
	sport, dport uint16
	expires      int64
}

type fragOrder struct {
	key     fragKey
	expires int64
}

// heldFrag is a non-first fragment waiting for its first fragment.
type heldFrag struct {
	key             fragKey
	tuple           flow.Tuple
	ts              int64 // packet time
	at              int64 // Clock when held
	wireLen, capLen int
	ref             uint32
	tun             *flow.TunnelChain // the fragment's tunnel chain; nil outside a tunnel
}

// fragTracker maps datagrams to the ports of their first fragment, and
// holds non-first fragments that came first. Both are bounded by max.
type fragTracker struct {
	max     int
	m       map[fragKey]fragPorts
	order   ring[fragOrder] // insertion order, for expiry and eviction
	pending []heldFrag
}

func (f *fragTracker) init(max int) {
	f.max = max
	f.m = make(map[fragKey]fragPorts, min(max, 1024))
	f.pending = make([]heldFrag, 0, min(max, 1024))
}

// firstFragment remembers the ports of p's datagram and counts the held
// fragments of that datagram in its flow.
func (t *Table[T]) firstFragment(p *PacketInfo) {
	f := &t.frag
	k := fragKeyOf(p)
	exp := t.clock.now + int64(t.cfg.FragmentTimeout)
	if _, ok := f.m[k]; !ok && len(f.m) >= f.max {
		// Full: forget the oldest datagram.
		for f.order.n > 0 {
			o := f.order.peek()
			f.order.pop()
			if v, ok := f.m[o.key]; ok && v.expires == o.expires {
				delete(f.m, o.key)
				t.stats.FragmentTrackerFull++
				break
			}
		}
	}
	f.m[k] = fragPorts{sport: p.Tuple.SrcPort, dport: p.Tuple.DstPort, expires: exp}
	f.order.push(fragOrder{key: k, expires: exp})
	if len(f.pending) == 0 {
		return
	}
	for i := 0; i < len(f.pending); {
		h := &f.pending[i]
		if h.key != k {
			i++
			continue
		}
		tup := h.tuple
		tup.SrcPort, tup.DstPort = p.Tuple.SrcPort, p.Tuple.DstPort
		t.accountHeld(h, &tup)
		t.stats.FragmentsResolved++
		t.stats.FragmentsReordered++
		last := len(f.pending) - 1
		f.pending[i] = f.pending[last]
		f.pending[last] = heldFrag{}
		f.pending = f.pending[:last]
	}
}

// nonFirstFragment accounts a fragment that carries no transport header.
func (t *Table[T]) nonFirstFragment(p *PacketInfo) (*T, int) {
	f := &t.frag
	k := fragKeyOf(p)
	tup := p.Tuple
	tup.SrcPort, tup.DstPort = 0, 0
	if v, ok := f.m[k]; ok && v.expires > t.clock.now {
		tup.SrcPort, tup.DstPort = v.sport, v.dport
		t.stats.FragmentsResolved++
		return t.account(&tup, p.Time, p.WireLen, p.CapLen, 0, true, p.Tunnels)
	}
	if len(f.pending) >= f.max {
		t.stats.FragmentHeldFull++
		t.stats.FragmentsOrphaned++
		return t.account(&tup, p.Time, p.WireLen, p.CapLen, 0, true, p.Tunnels)
	}
	f.pending = append(f.pending, heldFrag{key: k, tuple: tup, ts: p.Time, at: t.clock.now, wireLen: p.WireLen, capLen: p.CapLen, ref: p.Ref,
		tun: flow.NewTunnelChain(p.Tunnels)})
	if t.onHeld == nil {
		t.stats.FragmentsUnstored++
	}
	return nil, 0
}

// expireFragments forgets datagrams past the fragment timeout and counts
// held fragments past it as orphans in their port-less flow.
func (t *Table[T]) expireFragments(now int64) {
	f := &t.frag
	for f.order.n > 0 {
		o := f.order.peek()
		if o.expires > now {
			break
		}
		f.order.pop()
		if v, ok := f.m[o.key]; ok && v.expires == o.expires {
			delete(f.m, o.key)
		}
	}
	if f.order.n > 2*len(f.m)+64 {
		f.order.filter(func(o *fragOrder) bool {
			v, ok := f.m[o.key]
			return ok && v.expires == o.expires
		})
	}
	timeout := int64(t.cfg.FragmentTimeout)
	for i := 0; i < len(f.pending); {
		h := &f.pending[i]
		if h.at+timeout > now {
			i++
			continue
		}
		t.orphan(h)
		last := len(f.pending) - 1
		f.pending[i] = f.pending[last]
		f.pending[last] = heldFrag{}
		f.pending = f.pending[:last]
	}
}

func (t *Table[T]) orphan(h *heldFrag) {
	tup := h.tuple
	t.accountHeld(h, &tup)
	t.stats.FragmentsOrphaned++
}

// flushFragments counts every held fragment as an orphan and forgets all
// datagrams.
func (t *Table[T]) flushFragments() {
	f := &t.frag
	for i := range f.pending {
		t.orphan(&f.pending[i])
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	clear(f.m)
	f.order.reset()
}
