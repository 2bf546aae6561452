// Package flowtable is the sensor's per-worker flow table: it accounts
// decoded packets to bidirectional flows, decides how many bytes of each
// packet the sensor stores (capture budget, snap length), ends flows on
// TCP close, idle, active timeout and eviction, emits periodic updates of
// long flows, and maps non-first IP fragments to their datagram's flow.
//
// The sensor dispatches packets so that both directions of a flow and all
// fragments of an IP datagram reach the same worker; each worker owns one
// Table and uses it from its goroutine only, so the per-packet path takes
// no lock and does not allocate.
//
// Memory is bounded by Config.MaxFlows. Entries live in a chunked slab
// addressed by 32-bit indexes (no pointer per flow), found through an
// open-addressing index of 32-bit slots (24-bit entry number, 8-bit hash
// tag) and kept in a least-recently-active list for idle expiry and
// eviction. Timeouts are driven by packet time through Advance. The
// tunnel chain of a flow found in a tunnel (PacketInfo.Tunnels, its first
// packet's) is kept in a map beside the entries, by entry, so that
// untunnelled flows pay nothing for it (BenchmarkBytesPerFlow,
// BenchmarkBytesPerTunnelledFlow). With Config.TunnelFlows the outermost
// tunnel's own connection is a flow too (see Packet), accounted in the
// same table, with no stored bytes.
package flowtable

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tapir-sensor/tapir/flow"
)

// FragInfo describes the IP fragmentation of a packet, as the decoder
// reports it (decode.Packet's IsFragment, FragOffset, MoreFragments,
// FragID).
type FragInfo struct {
	// IsFragment is set for every fragment of a fragmented datagram
	// (offset != 0 or more-fragments set), not for whole datagrams.
	IsFragment bool
	// MoreFragments is the MF flag (IPv4) or M flag (IPv6).
	MoreFragments bool
	// Offset is the fragment offset. Only zero (first fragment, which
	// carries the transport header) versus non-zero matters, so either
	// unit (8-byte blocks or bytes) works.
	Offset uint32
	// ID is the IPv4 identification or IPv6 fragment identification.
	ID uint32
}

// PacketInfo is what the table needs to know of one decoded packet.
type PacketInfo struct {
	// Tuple is the directional tuple (Src = sender). For a non-first
	// fragment the ports are ignored: the table fills them in from the
	// datagram's first fragment.
	Tuple flow.Tuple
	// Time is the packet time in Unix nanoseconds.
	Time int64
	// WireLen is the frame length on the wire, CapLen the captured bytes.
	WireLen, CapLen int
	// TCPFlags is the TCP flags byte (0 for other protocols).
	TCPFlags uint8
	// Frag describes IP fragmentation.
	Frag FragInfo
	// Tunnels is the packet's tunnel chain, outermost first
	// (decode.Packet.Tunnels[:NTunnels]); empty outside a tunnel. The
	// table copies it when the packet opens a flow and does not retain
	// the slice.
	Tunnels []flow.Tunnel
	// Ref is the caller's handle for this packet. When Packet holds a
	// non-first fragment (returns a nil state), the handler set with
	// SetHeldHandler later receives Ref with the fragment's flow state
	// and store length, so the caller can store the bytes it kept.
	Ref uint32
}

// IDCounter hands out the per-sensor counter part of flow IDs. One
// IDCounter is shared by the tables of all workers of a sensor, so IDs are
// unique per sensor; it is touched once per new flow. It starts at a
// random value (drawn when the first table is built on it), so a sensor
// that restarts and sees flows with the same first-seen times (a file
// read again) does not repeat their IDs: see flow.ID for the odds. It is
// safe for concurrent use.
type IDCounter struct {
	once sync.Once
	n    atomic.Uint32
}

// seed starts the counter at a random value, once.
func (c *IDCounter) seed() { c.once.Do(func() { c.n.Store(flow.RandomSeq()) }) }

func (c *IDCounter) next() uint32 { return c.n.Add(1) }

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
	nilIdx    = ^uint32(0)

	slotIdxMask = 1<<24 - 1
	minIndex    = 1024
)

// Entry state bits.
const (
	stUsed       = 1 << iota
	stInitB      // the initiator is the key's B side
	stFinA       // FIN seen from A
	stFinB       // FIN seen from B
	stRST        // RST seen
	stClosing    // FIN both ways or RST: lingering until the close deadline
	stExempt     // Config.BudgetExempt said the flow is stored whole
	stTunnel     // the flow has a tunnel chain in Table.tunnels
	stTunnelFlow // the flow is a tunnel's own connection (tunnelPacket)
)

// dirStats counts one direction (A->B or B->A) of an entry.
type dirStats struct {
	packets, bytes             uint64
	storedPackets, storedBytes uint64
	first, last                int64
}

// entry is one flow slot. Its fields are ordered to keep it small: 192
// bytes plus T.
type entry[T any] struct {
	dir        [2]dirStats // indexed by key direction: 0 = A->B
	start      int64       // first-seen time, Unix ns (part of the ID)
	born, seen int64       // Clock at the first and the latest packet (timers)
	truncated  uint32      // packets stored shorter than their wire length (saturating)
	budgetCut  uint32      // packets not stored, budget spent (saturating)
	seq        uint32      // ID counter
	prev, next uint32      // LRU links (next doubles as the free list link)
	segment    uint32      // records emitted so far
	key        flow.Key
	flags      [2]uint8 // OR of TCP flags per key direction
	state      uint16
	user       T
}

type schedItem struct{ idx, seq uint32 }

type lingerItem struct {
	idx, seq uint32
	deadline int64
}

// Table is a flow table for one worker. It is not safe for concurrent
// use: one goroutine calls Packet, Advance, Flush and Stats, and onRecord
// runs synchronously on that goroutine.
type Table[T any] struct {
	cfg                                Config
	idle, active, update, linger, tick int64
	budget                             uint64
	snap                               int
	onRecord                           func(*flow.Record, *T)
	onHeld                             func(ref uint32, state *T, storeLen int)
	ids                                *IDCounter
	sensorHash                         uint32
	seed                               uint64

	chunks     []*[chunkSize]entry[T] // arrays: at needs one bounds check, not two
	nslots     uint32                 // entries ever allocated (high-water mark)
	free       uint32                 // free list head
	live       int
	head, tail uint32 // LRU list: head most recently active

	index []uint32 // 0 empty; else (entry+1) | tag<<24
	mask  uint32

	// tunnels holds the tunnel chain of the flows found in a tunnel, by
	// entry (state bit stTunnel): kept outside the entries so that
	// untunnelled flows pay nothing for it.
	tunnels map[uint32]*flow.TunnelChain

	sched   ring[schedItem]
	lingerQ ring[lingerItem]
	frag    fragTracker

	clock    Clock
	nextTick int64
	rec      flow.Record
	cidBuf   [flow.CommunityIDLen]byte
	stats    Stats
}

// New returns an empty table. ids is the sensor-wide flow ID counter
// shared by all workers (nil: a private counter). onRecord receives every
// record (updates and final records); the record and the state pointer
// are valid only during the call, and onRecord must not call back into
// the table. After a final record the state is zeroed for reuse.
func New[T any](cfg Config, ids *IDCounter, onRecord func(rec *flow.Record, state *T)) (*Table[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if ids == nil {
		ids = new(IDCounter)
	}
	ids.seed()
	if onRecord == nil {
		onRecord = func(*flow.Record, *T) {}
	}
	t := &Table[T]{
		cfg:        cfg,
		idle:       int64(cfg.IdleTimeout),
		active:     int64(cfg.ActiveTimeout),
		update:     int64(cfg.UpdateInterval),
		linger:     int64(cfg.TCPCloseLinger),
		budget:     uint64(cfg.BudgetBytes),
		snap:       cfg.SnapLen,
		onRecord:   onRecord,
		ids:        ids,
		sensorHash: flow.SensorHash(cfg.SensorID),
		seed:       hashSeed(rand.Uint64()),
		free:       nilIdx,
		head:       nilIdx,
		tail:       nilIdx,
		index:      make([]uint32, minIndex),
		mask:       minIndex - 1,
	}
	t.tick = min(int64(100*time.Millisecond), t.linger/2, t.idle/2, int64(cfg.FragmentTimeout)/2)
	t.tick = max(t.tick, 1)
	t.frag.init(cfg.MaxFragments)
	t.rec.SensorID = cfg.SensorID
	t.rec.Interface = cfg.Interface
	return t, nil
}

func (t *Table[T]) at(i uint32) *entry[T] { return &t.chunks[i>>chunkBits][i&chunkMask] }

// SetHeldHandler sets the function that receives a held non-first
// fragment (see PacketInfo.Ref) once it is accounted: in its datagram's
// flow when the first fragment arrives, or in the port-less flow when the
// fragment timeout passes or the held list is full. state and storeLen
// are as Packet would have returned them; state is valid during the call
// only, and fn must not call back into the table. Without a handler held
// fragments are counted but never stored (FragmentsUnstored).
func (t *Table[T]) SetHeldHandler(fn func(ref uint32, state *T, storeLen int)) { t.onHeld = fn }

// accountHeld accounts a held fragment and hands it to the held handler.
func (t *Table[T]) accountHeld(h *heldFrag, tup *flow.Tuple) {
	var tun []flow.Tunnel
	if h.tun != nil {
		tun = h.tun.Levels
	}
	st, n := t.account(tup, h.ts, h.wireLen, h.capLen, 0, t.onHeld != nil, tun)
	if t.onHeld != nil {
		t.onHeld(h.ref, st, n)
	}
}

// Len returns the number of open flows.
func (t *Table[T]) Len() int { return t.live }

// Packet accounts one packet and returns its flow's state and how many
// bytes of the packet to store: CapLen, less when cut to the snap length,
// 0 when the flow direction's capture budget is spent. A non-first
// fragment that arrives before its datagram's first fragment is held (its
// accounting happens when the first fragment arrives or the fragment
// timeout passes) and Packet returns (nil, 0): such a packet cannot be
// stored. The state pointer is valid until the next call into the table.
//
// With Config.TunnelFlows, a packet found in a tunnel (PacketInfo.Tunnels)
// is also counted in the tunnel flow of its outermost tunnel that is not
// a mirror encapsulation: the flow of that tunnel's own connection (its
// outer 5-tuple), whose record carries that one level as its chain
// (flow.Record.IsTunnelFlow) and whose packets are stored with the inner
// flows, not again.
func (t *Table[T]) Packet(p *PacketInfo) (state *T, storeLen int) {
	t.stats.Packets++
	if c := &t.clock; p.Time > c.hi && c.hi == c.top && c.init {
		// Clock.Observe of time running forward, inline.
		c.now += p.Time - c.hi
		c.hi, c.top = p.Time, p.Time
	} else {
		c.Observe(p.Time)
	}
	if len(p.Tunnels) == 0 && !p.Frag.IsFragment {
		// account without its tunnel chain: one call level less for
		// most packets.
		idx, fwd, created := t.lookup(&p.Tuple, p.TCPFlags, p.Time)
		e := t.at(idx)
		if st := e.state; !created && st&stTunnel != 0 && st&stTunnelFlow == 0 {
			t.checkTunnels(idx, nil)
		}
		return t.countEntry(idx, e, fwd, p.Time, p.WireLen, p.CapLen, p.TCPFlags, true)
	}
	if len(p.Tunnels) > 0 && t.cfg.TunnelFlows {
		t.tunnelPacket(p)
	}
	if p.Frag.IsFragment {
		if p.Frag.Offset != 0 {
			return t.nonFirstFragment(p)
		}
		st, n := t.account(&p.Tuple, p.Time, p.WireLen, p.CapLen, p.TCPFlags, true, p.Tunnels)
		t.firstFragment(p)
		return st, n
	}
	return t.account(&p.Tuple, p.Time, p.WireLen, p.CapLen, p.TCPFlags, true, p.Tunnels)
}

// account adds a packet to its flow, creating the flow if needed. tun
// is the packet's tunnel chain: it becomes a new flow's chain, and one
// that differs from the flow's is counted.
func (t *Table[T]) account(tup *flow.Tuple, ts int64, wireLen, capLen int, tcpFlags uint8, store bool, tun []flow.Tunnel) (*T, int) {
	idx, fwd, created := t.lookup(tup, tcpFlags, ts)
	if created {
		if len(tun) > 0 {
			// The sender is the initiator unless the key's other side is.
			t.setTunnels(idx, tun, fwd == (t.at(idx).state&stInitB != 0))
			t.stats.TunnelledFlows++
		}
	} else if st := t.at(idx).state; len(tun) > 0 || st&stTunnel != 0 && st&stTunnelFlow == 0 {
		t.checkTunnels(idx, tun)
	}
	return t.count(idx, fwd, ts, wireLen, capLen, tcpFlags, store)
}

// lookup returns the entry of tup's flow, creating it if needed
// (created), and whether tup runs in the key's forward direction.
func (t *Table[T]) lookup(tup *flow.Tuple, tcpFlags uint8, ts int64) (idx uint32, fwd, created bool) {
	var k flow.Key
	fwd = tup.KeyInto(&k)
	h := t.hash(&k)
	idx, pos := t.find(&k, h)
	if idx != nilIdx && tup.Proto == flow.ProtoTCP && tcpFlags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN {
		// A new SYN on a closing connection: the port is being reused.
		if e := t.at(idx); e.state&stClosing != 0 {
			t.end(idx, closeReason(e.state))
			idx = nilIdx
			_, pos = t.find(&k, h)
		}
	}
	if idx != nilIdx {
		return idx, fwd, false
	}
	return t.create(&k, h, pos, fwd, tup.Proto, tcpFlags, ts), fwd, true
}

// count adds a packet to flow idx (in the key's forward direction when
// fwd) and returns the flow's state and how many bytes of the packet to
// store (none unless store).
func (t *Table[T]) count(idx uint32, fwd bool, ts int64, wireLen, capLen int, tcpFlags uint8, store bool) (*T, int) {
	return t.countEntry(idx, t.at(idx), fwd, ts, wireLen, capLen, tcpFlags, store)
}

// countEntry is count with flow idx's entry e looked up.
func (t *Table[T]) countEntry(idx uint32, e *entry[T], fwd bool, ts int64, wireLen, capLen int, tcpFlags uint8, store bool) (*T, int) {
	e.seen = t.clock.now
	d := 0
	if !fwd {
		d = 1
	}
	if ts < e.start {
		ts = e.start // reordered packet: keep Start and the ID stable
	}
	ds := &e.dir[d]
	if ds.packets == 0 {
		ds.first = ts
	}
	ds.packets++
	ds.bytes += uint64(wireLen)
	if ts > ds.last {
		ds.last = ts
	}
	e.flags[d] |= tcpFlags

	storeLen := 0
	if store {
		if t.budget > 0 && ds.storedBytes >= t.budget && !t.exempt(e) {
			if e.budgetCut != ^uint32(0) {
				e.budgetCut++
			}
			n := capLen
			if t.snap > 0 && n > t.snap {
				n = t.snap
			}
			t.stats.BudgetCutPackets++
			t.stats.BudgetCutBytes += uint64(n)
		} else {
			storeLen = capLen
			if t.snap > 0 && storeLen > t.snap {
				storeLen = t.snap
			}
			if storeLen > 0 {
				// A packet captured with no bytes goes into no block:
				// the record counts only what blocks hold.
				ds.storedPackets++
				ds.storedBytes += uint64(storeLen)
			}
			if storeLen < wireLen {
				if e.truncated != ^uint32(0) {
					e.truncated++
				}
				t.stats.TruncatedPackets++
			}
		}
	}

	if tcpFlags&(flow.TCPFlagFIN|flow.TCPFlagRST) != 0 && e.key.Proto == flow.ProtoTCP {
		if tcpFlags&flow.TCPFlagFIN != 0 {
			e.state |= stFinA << d
		}
		if tcpFlags&flow.TCPFlagRST != 0 {
			e.state |= stRST
		}
		if e.state&stClosing == 0 && (e.state&stRST != 0 || e.state&(stFinA|stFinB) == stFinA|stFinB) {
			e.state |= stClosing
			t.lingerQ.push(lingerItem{idx: idx, seq: e.seq, deadline: t.clock.now + t.linger})
		}
	}
	if t.head != idx {
		t.lruToFront(idx, e)
	}
	return &e.user, storeLen
}

// setTunnels keeps a copy of chain as flow idx's tunnel chain, oriented
// as the record's tuple (initiator to responder): reversed when the
// packet was the responder's (rev).
func (t *Table[T]) setTunnels(idx uint32, chain []flow.Tunnel, rev bool) {
	if t.tunnels == nil {
		t.tunnels = make(map[uint32]*flow.TunnelChain)
	}
	c := flow.NewTunnelChain(chain)
	if rev {
		for i := range c.Levels {
			c.Levels[i] = c.Levels[i].Reverse()
		}
	}
	t.tunnels[idx] = c
	t.at(idx).state |= stTunnel
}

// tunnelPacket accounts a tunnelled packet in the flow of its outermost
// tunnel's own connection (the tunnel flow), beside the inner flow that
// Packet accounts it in: packets and bytes as on the wire, nothing
// stored (the packet is stored once, with the inner flow). Mirror levels
// are skipped: the tunnel flow is that of the first level that is not a
// mirror encapsulation, as if the sensor sat on the mirrored port. Only
// one level is accounted, so each tunnel has one record; the levels
// below it are seen in the inner flows' chains.
func (t *Table[T]) tunnelPacket(p *PacketInfo) {
	i := 0
	for i < len(p.Tunnels) && p.Tunnels[i].Mirror {
		i++
	}
	if i == len(p.Tunnels) {
		return
	}
	lvl := &p.Tunnels[i]
	tup := lvl.Tuple()
	tup.VLAN, tup.InnerVLAN, tup.Mirror = p.Tuple.VLAN, p.Tuple.InnerVLAN, p.Tuple.Mirror
	idx, fwd, created := t.lookup(&tup, 0, p.Time)
	if created || t.at(idx).state&stTunnel == 0 {
		// A flow already open on the tuple (packets the decoder could
		// not take apart) becomes the tunnel flow too.
		t.setTunnels(idx, p.Tunnels[i:i+1], fwd == (t.at(idx).state&stInitB != 0))
		t.at(idx).state |= stTunnelFlow
		t.stats.TunnelFlows++
	}
	t.count(idx, fwd, p.Time, p.WireLen, p.CapLen, 0, false)
}

// checkTunnels counts a packet of flow idx whose tunnel chain differs
// from the flow's (the flow keeps its first packet's chain): other
// tunnels, not the same ones in the other direction or with other UDP
// ports (flow.TunnelChain.Same).
func (t *Table[T]) checkTunnels(idx uint32, chain []flow.Tunnel) {
	var have *flow.TunnelChain
	if t.at(idx).state&stTunnel != 0 {
		have = t.tunnels[idx]
	}
	if !have.Same(chain) {
		t.stats.TunnelChainChanged++
	}
}

// exempt reports whether flow e is exempt from the capture budget,
// asking Config.BudgetExempt once until it says yes.
func (t *Table[T]) exempt(e *entry[T]) bool {
	if e.state&stExempt != 0 {
		return true
	}
	if t.cfg.BudgetExempt != nil && t.cfg.BudgetExempt(&e.key) {
		e.state |= stExempt
		return true
	}
	return false
}

// create opens a flow for key k whose first packet runs in the key's
// forward direction when fwd. pos is the free index slot find returned.
func (t *Table[T]) create(k *flow.Key, h uint64, pos uint32, fwd bool, proto, tcpFlags uint8, ts int64) uint32 {
	if t.live >= t.cfg.MaxFlows {
		t.end(t.tail, flow.ReasonEvicted)
		_, pos = t.find(k, h)
	}
	if (t.live+1)*2 > len(t.index) {
		// At most half full: a lookup probes 1.5 slots on average, and a
		// miss 2.5 (at three quarters, 2.5 and 8.5, with long runs that
		// made the big input's lookups cost twice as many instructions
		// in some runs than in others, by the hash seed).
		t.growIndex()
		_, pos = t.find(k, h)
	}
	idx := t.alloc()
	e := t.at(idx)
	e.key = *k
	e.start = ts
	e.born = t.clock.now
	e.seq = t.ids.next()
	e.state = stUsed
	// The initiator is the sender of the first packet, except that the
	// receiver of a first SYN-ACK is the initiator.
	senderIsB := !fwd
	if proto == flow.ProtoTCP && tcpFlags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK {
		senderIsB = !senderIsB
	}
	if senderIsB {
		e.state |= stInitB
	}
	t.index[pos] = (idx + 1) | uint32(h>>56)<<24
	t.lruPushFront(idx)
	t.sched.push(schedItem{idx: idx, seq: e.seq})
	t.live++
	t.stats.Created++
	return idx
}

func (t *Table[T]) alloc() uint32 {
	if t.free != nilIdx {
		i := t.free
		t.free = t.at(i).next
		return i
	}
	if int(t.nslots) == len(t.chunks)*chunkSize {
		t.chunks = append(t.chunks, new([chunkSize]entry[T]))
	}
	i := t.nslots
	t.nslots++
	return i
}

// end emits the final record of flow idx and frees its slot.
func (t *Table[T]) end(idx uint32, reason flow.EndReason) {
	e := t.at(idx)
	t.emit(idx, e, reason)
	if e.state&stTunnel != 0 {
		delete(t.tunnels, idx)
	}
	t.unindex(idx, e)
	t.lruUnlink(idx)
	*e = entry[T]{}
	e.next = t.free
	t.free = idx
	t.live--
	t.stats.Ended[reason]++
}

// emit fills the shared record from e (entry idx) and hands it to
// onRecord.
func (t *Table[T]) emit(idx uint32, e *entry[T], reason flow.EndReason) {
	r := &t.rec
	r.ID = flow.NewID(time.Unix(0, e.start), t.sensorHash, e.seq)
	tup := e.key.Forward()
	src := 0
	if e.state&stInitB != 0 {
		tup = tup.Reverse()
		src = 1
	}
	r.Tuple = tup
	r.CommunityID = string(flow.AppendCommunityID(t.cidBuf[:0], t.cfg.CommunitySeed, &tup))
	fillDir(&r.Source, &e.dir[src], e.flags[src])
	fillDir(&r.Destination, &e.dir[1-src], e.flags[1-src])
	r.Start = time.Unix(0, e.start).UTC()
	r.End = time.Unix(0, max(e.dir[0].last, e.dir[1].last, e.start)).UTC()
	r.Reason = reason
	r.Segment = e.segment
	r.Truncated = uint64(e.truncated)
	r.BudgetCut = uint64(e.budgetCut)
	r.Tunnels = nil
	if e.state&stTunnel != 0 {
		r.Tunnels = t.tunnels[idx]
	}
	t.onRecord(r, &e.user)
	e.segment++
}

func fillDir(d *flow.DirStats, s *dirStats, flags uint8) {
	d.Packets, d.Bytes = s.packets, s.bytes
	d.StoredPackets, d.StoredBytes = s.storedPackets, s.storedBytes
	d.TCPFlags = flags
	if s.packets == 0 {
		d.First, d.Last = time.Time{}, time.Time{}
		return
	}
	d.First = time.Unix(0, s.first).UTC()
	d.Last = time.Unix(0, s.last).UTC()
}

func closeReason(state uint16) flow.EndReason {
	if state&stRST != 0 {
		return flow.ReasonRST
	}
	return flow.ReasonFIN
}

// idleReason is the reason of a flow that went idle: fin or rst when the
// TCP connection was closing, else idle-timeout.
func idleReason(state uint16) flow.EndReason {
	if state&(stRST|stFinA|stFinB) != 0 {
		return closeReason(state)
	}
	return flow.ReasonIdleTimeout
}

// Advance expires flows and fragments and emits due updates as of now
// (Unix ns): packet time when reading a file, the wall clock when an
// interface is idle. It does real work at most once per tick of 100 ms
// (less when a timeout is shorter), so it is cheap to call per packet.
//
// Timers run on the table's Clock, which never runs backwards: now moves
// it forward only, and a packet time that steps back rebases it (see
// Clock), so a capture whose time steps back expires flows as one whose
// time runs forward.
func (t *Table[T]) Advance(now int64) {
	now = t.clock.Tick(now)
	if now < t.nextTick {
		return
	}
	t.nextTick = now + t.tick
	t.expire(now)
}

func (t *Table[T]) expire(now int64) {
	for t.lingerQ.n > 0 {
		it := t.lingerQ.peek()
		if it.deadline > now {
			break
		}
		t.lingerQ.pop()
		if e := t.at(it.idx); e.state&stUsed != 0 && e.seq == it.seq {
			t.end(it.idx, closeReason(e.state))
		}
	}
	for t.tail != nilIdx {
		e := t.at(t.tail)
		if e.seen+t.idle > now {
			break
		}
		t.end(t.tail, idleReason(e.state))
	}
	for t.sched.n > 0 {
		it := t.sched.peek()
		e := t.at(it.idx)
		if e.state&stUsed == 0 || e.seq != it.seq {
			t.sched.pop()
			continue
		}
		due, final := t.due(e)
		if due > now {
			break
		}
		t.sched.pop()
		if final {
			t.end(it.idx, flow.ReasonActiveTimeout)
			continue
		}
		t.emit(it.idx, e, flow.ReasonActive)
		t.stats.Updates++
		t.sched.push(it)
	}
	t.expireFragments(now)
	t.compactQueues()
}

// due returns when e next needs attention and whether that is its end.
func (t *Table[T]) due(e *entry[T]) (int64, bool) {
	end := e.born + t.active
	if t.update <= 0 {
		return end, true
	}
	next := e.born + int64(e.segment+1)*t.update
	if next < end {
		return next, false
	}
	return end, true
}

// compactQueues drops stale items once they outnumber live flows, so the
// queues stay bounded by the table's size.
func (t *Table[T]) compactQueues() {
	if t.sched.n > 2*t.live+64 {
		t.sched.filter(func(it *schedItem) bool {
			e := t.at(it.idx)
			return e.state&stUsed != 0 && e.seq == it.seq
		})
	}
	if t.lingerQ.n > 2*t.live+64 {
		t.lingerQ.filter(func(it *lingerItem) bool {
			e := t.at(it.idx)
			return e.state&stUsed != 0 && e.seq == it.seq
		})
	}
}

// Flush ends every open flow: closing TCP flows with reason fin or rst,
// the others with reason (usually flow.ReasonEndOfCapture). Held
// fragments are counted first, as orphans.
func (t *Table[T]) Flush(reason flow.EndReason) {
	t.flushFragments()
	for t.tail != nilIdx {
		r := reason
		if e := t.at(t.tail); e.state&stClosing != 0 {
			r = closeReason(e.state)
		}
		t.end(t.tail, r)
	}
	t.sched.reset()
	t.lingerQ.reset()
}

// Stats returns the table's counters. Call it from the table's goroutine.
func (t *Table[T]) Stats() Stats {
	s := t.stats
	s.Active = uint64(t.live)
	s.Fragments = uint64(len(t.frag.m))
	s.FragmentsHeld = uint64(len(t.frag.pending))
	s.ClockSteps, _, _ = t.clock.Steps()
	return s
}

// Clock returns the table's clock (read only): timers and ages run on
// Clock.Now, never on raw packet time.
func (t *Table[T]) Clock() *Clock { return &t.clock }

// --- index ---

const (
	k0 = 0xa0761d6478bd642f
	k1 = 0xe7037ed1a0b428db
	k2 = 0x8ebc6af09c88c6e3
	k3 = 0x589965cc75374cc3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashSeed makes a table's hash seed from a random number. Keys that
// differ only in their ports (one address pair, as in anonymised traces)
// differ only in hash's m, which its last step multiplies by k2^seed ^
// (InnerVLAN, Mirror), fixed for a run; with t trailing zero bits in that
// factor the low t bits of the product do not depend on m at all, and
// such keys fell into 2^t times fewer index slots (lookups on the big
// input cost up to three times as many instructions in some runs than in
// others). An even seed makes that factor odd (k0 and k2 are odd, and so
// the first step's factor seed^k0 for IPv4 keys), so the multiplications
// lose no bit of the key; hash's last fold spreads them to the low bits.
func hashSeed(r uint64) uint64 { return r &^ 1 }

// hash is a seeded wyhash-style hash of a key; the random seed keeps
// crafted tuples from colliding on purpose.
func (t *Table[T]) hash(k *flow.Key) uint64 {
	a0 := binary.LittleEndian.Uint64(k.A[0:])
	a1 := binary.LittleEndian.Uint64(k.A[8:])
	b0 := binary.LittleEndian.Uint64(k.B[0:])
	b1 := binary.LittleEndian.Uint64(k.B[8:])
	m := uint64(k.PortA) | uint64(k.PortB)<<16 | uint64(k.Proto)<<32 | uint64(k.Family)<<40 | uint64(k.VLAN)<<48
	// Three independent mixes (the multiplications overlap: a chain of
	// four was a latency of about 20 cycles a packet, 3 % of the
	// sensor's time on the big input), then a last fold by an odd
	// constant, so that every bit reaches the low bits that pick the
	// index slot (see hashSeed).
	ha := mix(a0^t.seed^k0, a1^k1)
	hb := mix(b0^k2, b1^k3^t.seed)
	hm := mix(m^k1, (uint64(k.InnerVLAN)|uint64(k.Mirror)<<16)^k2^t.seed)
	return mix(ha^hb^hm, k0)
}

// find returns the entry of k, or nilIdx and the free slot where k would
// go.
func (t *Table[T]) find(k *flow.Key, h uint64) (uint32, uint32) {
	tag := uint32(h>>56) << 24
	pos := uint32(h) & t.mask
	for {
		s := t.index[pos]
		if s == 0 {
			return nilIdx, pos
		}
		if s&^slotIdxMask == tag {
			i := s&slotIdxMask - 1
			if sameKey(&t.at(i).key, k) {
				return i, pos
			}
		}
		pos = (pos + 1) & t.mask
	}
}

// sameKey reports whether two keys are equal, as == does, comparing the
// key's 48 bytes as six 64-bit words with the two padding bytes after
// InnerVLAN masked off: == on flow.Key called memeqbody for each 16-byte
// address (about 2 % of the sensor's CPU on the big input, one key
// comparison per packet). TestSameKey keeps it in step with flow.Key's
// layout.
func sameKey(a, b *flow.Key) bool {
	// Word loads of a pointer-free type: checkptr allows them unaligned.
	x, y := (*[keySize / 8]uint64)(unsafe.Pointer(a)), (*[keySize / 8]uint64)(unsafe.Pointer(b))
	return (x[0]^y[0])|(x[1]^y[1])|(x[2]^y[2])|(x[3]^y[3])|(x[4]^y[4])|(x[5]^y[5])&keyLastWord == 0
}

const (
	// keySize is the size of flow.Key.
	keySize = 48
	// keyLastWord selects the bytes of the key's last word that are
	// fields: InnerVLAN (bytes 40-41) and Mirror (44-47), not the
	// padding between them.
	keyLastWord = 0xffffffff_0000ffff
)

// unindex removes entry idx from the index (backward-shift deletion, so
// no tombstones).
func (t *Table[T]) unindex(idx uint32, e *entry[T]) {
	mask := t.mask
	i := uint32(t.hash(&e.key)) & mask
	for t.index[i]&slotIdxMask != idx+1 {
		i = (i + 1) & mask
	}
	for j := i; ; {
		j = (j + 1) & mask
		s := t.index[j]
		if s == 0 {
			break
		}
		home := uint32(t.hash(&t.at(s&slotIdxMask-1).key)) & mask
		// The item at j may move to i unless its home lies cyclically in (i, j].
		if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t.index[i] = s
			i = j
		}
	}
	t.index[i] = 0
}

func (t *Table[T]) growIndex() {
	n := len(t.index) * 2
	t.index = make([]uint32, n)
	t.mask = uint32(n - 1)
	for i := uint32(0); i < t.nslots; i++ {
		e := t.at(i)
		if e.state&stUsed == 0 {
			continue
		}
		h := t.hash(&e.key)
		pos := uint32(h) & t.mask
		for t.index[pos] != 0 {
			pos = (pos + 1) & t.mask
		}
		t.index[pos] = (i + 1) | uint32(h>>56)<<24
	}
}

// --- LRU ---

func (t *Table[T]) lruUnlink(i uint32) { t.unlinkEntry(t.at(i)) }

// unlinkEntry takes entry e out of the LRU list.
func (t *Table[T]) unlinkEntry(e *entry[T]) {
	if e.prev != nilIdx {
		t.at(e.prev).next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nilIdx {
		t.at(e.next).prev = e.prev
	} else {
		t.tail = e.prev
	}
}

// lruToFront moves entry i (e), which is not the head, to the front of
// the list, with e looked up once.
func (t *Table[T]) lruToFront(i uint32, e *entry[T]) {
	t.unlinkEntry(e)
	t.pushFrontEntry(i, e)
}

func (t *Table[T]) lruPushFront(i uint32) { t.pushFrontEntry(i, t.at(i)) }

// pushFrontEntry puts entry i (e) at the front of the LRU list.
func (t *Table[T]) pushFrontEntry(i uint32, e *entry[T]) {
	e.prev = nilIdx
	e.next = t.head
	if t.head != nilIdx {
		t.at(t.head).prev = i
	} else {
		t.tail = i
	}
	t.head = i
}
