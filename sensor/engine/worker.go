package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/appmeta"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/flowtable"
)

// flowState is what a worker keeps per open flow, inline in the flow
// table's entry.
type flowState struct {
	b          *block.Builder // the flow's own builder (big flows, ring.go), nil when none
	head, tail pktRef         // the flow's first and last packet waiting in the ring (ring.go); 0: none
	gen        uint64         // generation of the waiting packets (see waitingFlow)
	waiting    uint32         // their bytes
	nextSeq    uint32         // block number of the flow's next block
	linkType   uint16         // link type of the waiting packets

	// Application metadata (see appMeta) and timeline (see timeline).
	app     *appmeta.Flow         // nil until the flow carries payload
	tl      *flow.TimelineBuilder // nil until the flow spans a second interval
	tlStart int64                 // first packet time, Unix ns
	tlEnd   int64                 // end of the open interval, Unix ns (0: no packet yet)
	tlBytes uint64                // wire bytes in the open interval
	tlPkts  uint32                // packets in the open interval
	mflags  uint8                 // mInit, mInitFwd, mDone
}

// flowState.mflags bits.
const (
	mInit       = 1 << iota // the flow's first packet was seen
	mInitFwd                // the initiator sends in the key's forward direction
	mDone                   // metadata complete or not applicable: no more work per packet
	mDoneClient             // the client's direction needs no more packets (appmeta.Flow.DirDone)
	mDoneServer             // the server's direction needs no more packets
)

// waitingFlow is an entry of the worker's FIFO of flows with packets
// waiting in the ring, oldest first, used to emit them by age and by the
// buffered-bytes cap. An entry is stale when the flow's waiting packets
// have another generation.
type waitingFlow struct {
	st    *flowState
	gen   uint64
	since int64 // clock at the first waiting packet
}

type worker struct {
	id     int
	cfg    *Config
	src    capture.Source
	sink   Sink
	log    *slog.Logger
	table  *flowtable.Table[flowState]
	enc    *block.Encoder
	iface  string
	maxAge int64

	maxBuffered int64 // this worker's share of blocks.max_buffered (setMaxBuffered)
	soft        int64 // softBuffered()

	dd          decode.Decoder // decodes the packets handled at once (not read ahead)
	rr          recordReader   // the source, when it reads a classic pcap file (see read)
	recs        [recordBatch]capture.Record
	rrLink      uint16          // its link type
	ahead       aheadQueue      // packets read ahead at a busy tap (ahead.go)
	aheadAt     int             // open flows from which packets are read ahead (aheadFlows)
	aheadPkts   uint64          // packets handled through the ahead queue
	dec         *decode.Options // this source's decoder options (Config.Decoders)
	pi          flowtable.PacketInfo
	out         []byte
	ring        pageRing      // the packets waiting for their blocks (ring.go)
	bld         block.Builder // scratch builder of the blocks leaving the ring
	fifo        []waitingFlow
	fifoHead    int
	gen         uint64
	pool        []*block.Builder      // idle builders for promoted flows
	own         int64                 // buffer bytes of the builders of promoted flows
	nOwn        int                   // promoted flows
	pooled      int64                 // buffer bytes of the pooled builders
	newBuilders int                   // builders allocated over the worker's life
	held        map[uint32]heldPacket // non-first fragments the flow table holds, by PacketInfo.Ref
	nextRef     uint32
	sinkErr     error

	stepLogged  bool // the first clock step was logged
	chainLogged bool // the first tunnel chain change was logged

	meta       *appmeta.Extractor // nil when metadata is off
	tlInterval int64              // timeline interval in ns; 0 when timelines are off
	tlPool     []*flow.TimelineBuilder
	tlEmpty    flow.TimelineBuilder

	stats Stats // owned by the worker goroutine; its Decode counts as packets are decoded

	mu      sync.Mutex
	snap    Stats // published copy, read by Stats()
	lastPub int64
	tick    int64 // Config.TickInterval in ns
}

func newWorker(id int, cfg *Config, src capture.Source, sink Sink, ids *flowtable.IDCounter, log *slog.Logger) (*worker, error) {
	ecfg, err := encoderConfig(cfg.Blocks.Compression)
	if err != nil {
		return nil, err
	}
	enc, err := block.NewEncoder(ecfg)
	if err != nil {
		return nil, fmt.Errorf("block encoder: %w", err)
	}
	w := &worker{id: id, cfg: cfg, src: src, sink: sink, enc: enc, log: log.With("worker", id),
		maxAge: int64(cfg.Blocks.MaxAge), aheadAt: aheadFlows, tick: int64(cfg.TickInterval)}
	if ifs := src.Interfaces(); len(ifs) > 0 {
		w.iface = filepath.Base(ifs[0].Name)
	}
	w.dec = decoderFor(cfg.Decoders, w.iface)
	w.dd.SetOptions(w.dec)
	if rr, ok := src.(recordReader); ok {
		if link, ok := rr.RecordLinkType(); ok {
			w.rr, w.rrLink = rr, link
		}
	}
	fc := cfg.Flows
	fc.SensorID = cfg.SensorID
	fc.Interface = w.iface
	fc.CommunitySeed = cfg.CommunitySeed
	fc.TunnelFlows = true
	if cfg.Metadata.Enabled {
		if w.meta, err = appmeta.New(cfg.Metadata); err != nil {
			return nil, err
		}
	}
	if cfg.Timeline.Enabled {
		w.tlInterval = int64(cfg.Timeline.Interval)
		w.tlEmpty.Init(cfg.Timeline.Interval, cfg.Timeline.MaxPoints)
	}
	w.table, err = flowtable.New(fc, ids, w.onRecord)
	if err != nil {
		return nil, err
	}
	w.held = make(map[uint32]heldPacket)
	w.table.SetHeldHandler(w.onHeld)
	return w, nil
}

// run reads the source until it ends or ctx is cancelled, then flushes.
func (w *worker) run(ctx context.Context) error {
	var readErr error
	nextCheck := 0
	for {
		if nextCheck--; nextCheck <= 0 {
			nextCheck = 256
			if ctx.Err() != nil {
				break
			}
		}
		if err := w.read(); err != nil {
			w.drainAhead()
			if errors.Is(err, capture.ErrTimeout) {
				w.advance(time.Now().UnixNano())
				nextCheck = 0
				continue
			}
			if !isEOF(err) {
				readErr = fmt.Errorf("read %s: %w", w.iface, err)
				w.log.Error("capture source failed; flushing what was read", "err", err)
			}
			break
		}
		if w.sinkErr != nil {
			break
		}
	}
	w.drainAhead()
	w.table.Flush(flow.ReasonEndOfCapture)
	for w.fifoHead < len(w.fifo) {
		w.closeOldest(false)
	}
	w.publish(time.Now().UnixNano())
	if readErr != nil {
		return readErr
	}
	return w.sinkErr
}

// recordReader is a source that also returns its packets' capture info
// as scalars, many at a time (capture.FileSource on a classic pcap
// stream).
type recordReader interface {
	RecordLinkType() (uint16, bool)
	ReadRecords(recs []capture.Record) (int, error)
}

// recordBatch is how many packets a worker takes from a recordReader at
// a time.
const recordBatch = 64

// read reads the next packets and handles them, or returns the source's
// error. A classic pcap file is read through ReadRecords, up to
// recordBatch packets a call (a call per packet through ReadRecord and
// the pcap reader was about 70 instructions a packet), with the capture
// info as scalars: a CaptureInfo received from ReadPacket into a local
// was stored by the compiler field by field and copied in 16-byte moves,
// a failed store forwarding on every packet (half of run's own samples in
// perf annotate). It stops after a packet that failed the sink.
func (w *worker) read() error {
	if w.rr != nil {
		n, err := w.rr.ReadRecords(w.recs[:])
		if err != nil {
			return err
		}
		for i := range w.recs[:n] {
			r := &w.recs[i]
			ci := capture.CaptureInfo{Timestamp: r.Timestamp, CaptureLength: r.CaptureLength, Length: r.Length, LinkType: w.rrLink}
			if w.table.Len() < w.aheadAt && w.ahead.n == 0 {
				// next's direct path, without its call per packet.
				common := w.dd.Decode(decode.LinkType(ci.LinkType), r.Data)
				w.handle(&w.dd.Packet, common, r.Data, &ci)
				w.afterPacket(ci.Timestamp)
			} else {
				w.next(r.Data, ci)
			}
			if w.sinkErr != nil {
				break
			}
		}
		return nil
	}
	data, ci, err := w.src.ReadPacket()
	if err != nil {
		return err
	}
	w.next(data, ci)
	return nil
}

// next handles a packet read.
func (w *worker) next(data []byte, ci capture.CaptureInfo) {
	if w.table.Len() < w.aheadAt && w.ahead.n == 0 {
		common := w.dd.Decode(decode.LinkType(ci.LinkType), data)
		w.handle(&w.dd.Packet, common, data, &ci)
		w.afterPacket(ci.Timestamp)
		return
	}
	w.push(data, ci)
	if w.ahead.n > aheadDepth || w.table.Len() < w.aheadAt {
		w.afterPacket(w.popOldest())
	}
}

// afterPacket runs the timers when a tick of packet time has passed
// since they last ran (ts: the packet's time).
func (w *worker) afterPacket(ts int64) {
	if w.table.Clock().Now()-w.lastPub >= w.tick {
		w.advance(ts)
	}
}

// handle handles one frame decoded into p; common: decode.Decoder
// reported it a common frame (no tunnel, fragment or decoding problem).
func (w *worker) handle(p *decode.Packet, common bool, data []byte, ci *capture.CaptureInfo) {
	if common {
		w.stats.Decode.ObserveCommon(p, ci.Length)
	} else {
		w.stats.Decode.Observe(p, ci.Length)
	}
	if !w.dec.Keep(p) { // decode.tunnel_filter
		w.stats.Decode.TunnelFiltered++
		return
	}
	pi := &w.pi
	pi.Tunnels = nil
	if common {
		pi.Tuple = p.Tuple
		pi.TCPFlags = p.TCPFlags
		pi.Frag = flowtable.FragInfo{}
	} else if p.HasTuple {
		pi.Tuple = p.Tuple
		pi.Tunnels = p.Tunnels[:p.NTunnels]
		pi.TCPFlags = p.TCPFlags
		pi.Frag = flowtable.FragInfo{IsFragment: p.IsFragment, MoreFragments: p.MoreFragments,
			ID: p.FragID, Offset: p.FragOffset}
	} else {
		linkTuple(&pi.Tuple, p, ci.LinkType, data)
		pi.Tunnels = p.Tunnels[:p.MirrorLevels] // a mirrored frame that is not IP
		pi.TCPFlags = 0
		pi.Frag = flowtable.FragInfo{}
	}
	pi.Time = ci.Timestamp
	pi.WireLen, pi.CapLen = ci.Length, ci.CaptureLength
	w.nextRef++
	pi.Ref = w.nextRef
	st, n := w.table.Packet(pi)
	w.stats.Packets++
	w.stats.WireBytes += uint64(ci.Length)
	if st == nil {
		// A non-first fragment ahead of its first fragment: the table
		// holds its accounting; keep its bytes until onHeld stores them.
		w.stats.HeldFragments++
		w.held[pi.Ref] = heldPacket{data: append([]byte(nil), data...), ci: *ci}
		return
	}
	if w.meta != nil && st.mflags&mDone == 0 {
		w.appMeta(st, p, data)
	}
	if w.tlInterval > 0 {
		if ts := ci.Timestamp; st.tlEnd != 0 && ts < st.tlEnd { // the open interval (timeline, inline)
			st.tlPkts++
			st.tlBytes += uint64(ci.Length)
		} else {
			w.timeline(st, ts, ci.Length)
		}
	}
	if n > 0 && !w.cfg.Blocks.Disabled {
		w.store(st, data[:n], ci)
	}
}

// decoderFor returns the decoder options of source name: decoders[name],
// else decoders[""], else the defaults.
func decoderFor(decoders map[string]*decode.Options, name string) *decode.Options {
	if o := decoders[name]; o != nil {
		return o
	}
	if o := decoders[""]; o != nil {
		return o
	}
	return &decode.Options{}
}

// linkTuple builds the pseudo tuple of a frame that is not IP: MAC
// addresses (Ethernet only) and the EtherType as both "ports", so both
// directions of a conversation share one key.
func linkTuple(t *flow.Tuple, p *decode.Packet, linkType uint16, data []byte) {
	*t = flow.Tuple{Family: flow.FamilyLink, VLAN: p.Tuple.VLAN, InnerVLAN: p.Tuple.InnerVLAN, Mirror: p.Tuple.Mirror,
		SrcPort: p.EtherType, DstPort: p.EtherType}
	if off := p.LinkOffset; linkType == uint16(decode.LinkEthernet) && len(data) >= off+12 {
		copy(t.Dst[:6], data[off:off+6])
		copy(t.Src[:6], data[off+6:off+12])
	}
}

func (w *worker) emit(b *block.Builder) {
	if b.Packets() == 0 {
		return
	}
	out, _, err := b.Encode(w.enc, w.out[:0])
	if err != nil {
		w.stats.BlockErrors++
		w.log.Error("encode block", "err", err)
		return
	}
	w.out = out
	w.stats.Blocks++
	w.stats.BlockBytes += uint64(len(out))
	if err := w.sink.AddBlock(out); err != nil {
		w.sinkFailed(err)
	}
}

func (w *worker) sinkFailed(err error) {
	w.stats.SinkErrors++
	if w.sinkErr == nil {
		w.sinkErr = fmt.Errorf("sink: %w", err)
		w.log.Error("sink failed; stopping capture", "err", err)
	}
}

// onRecord is the flow table's callback: on a final record the flow's
// last block is closed before the record goes out, so a record never
// arrives before its packets.
func (w *worker) onRecord(rec *flow.Record, st *flowState) {
	if rec.Reason.Final() && (st.head != 0 || st.b != nil) {
		w.emitFlow(st, false)
	}
	rec.App, rec.Timeline = nil, nil // the table reuses rec
	if st.app != nil {
		rec.App = st.app.Meta()
	}
	if w.tlInterval > 0 && st.tlEnd != 0 && rec.End.Sub(rec.Start) >= w.cfg.Timeline.MinDuration {
		b := st.tl
		if b == nil {
			b = &w.tlEmpty
		}
		rec.Timeline = b.Timeline((st.tlEnd-w.tlInterval)/1e6, uint64(st.tlPkts), st.tlBytes)
		w.stats.Timelines++
	}
	w.stats.Records++
	if err := w.sink.AddRecord(rec); err != nil {
		w.sinkFailed(err)
	}
	rec.App, rec.Timeline = nil, nil
	if rec.Reason.Final() {
		if st.app != nil && !st.app.Done() {
			w.meta.Release(st.app)
		}
		st.app = nil
		if st.tl != nil && len(w.tlPool) < 1024 {
			w.tlPool = append(w.tlPool, st.tl)
		}
		st.tl = nil
	}
}

// appMeta hands the first payload packets of a TCP or UDP flow to the
// metadata extractor, until the flow's metadata is complete or its packet
// budget is spent; after that a flow costs one flag test per packet.
func (w *worker) appMeta(st *flowState, p *decode.Packet, data []byte) {
	if !p.HasPorts || p.IsFragment || (p.Proto != flow.ProtoTCP && p.Proto != flow.ProtoUDP) {
		if !p.IsFragment {
			st.mflags |= mDone
		}
		return
	}
	fwd := keyForward(&p.Tuple)
	if st.mflags&mInit == 0 {
		// The initiator, as the flow table decides it: the sender of the
		// first packet, or the receiver of a first SYN-ACK.
		st.mflags |= mInit
		synAck := p.Proto == flow.ProtoTCP && p.TCPFlags&(flow.TCPFlagSYN|flow.TCPFlagACK) == flow.TCPFlagSYN|flow.TCPFlagACK
		if fwd != synAck {
			st.mflags |= mInitFwd
		}
	}
	if p.PayloadLen <= 0 || p.PayloadOffset+p.PayloadLen > len(data) {
		return
	}
	fromClient := fwd == (st.mflags&mInitFwd != 0)
	dirDone := uint8(mDoneServer)
	if fromClient {
		dirDone = mDoneClient
	}
	if st.mflags&dirDone != 0 {
		// appmeta would return at once; its Flow stays out of the cache.
		return
	}
	tcp := p.Proto == flow.ProtoTCP
	if st.app == nil {
		st.app = w.meta.NewFlow(tcp)
	}
	var seq uint32
	if tcp {
		seq = binary.BigEndian.Uint32(data[p.L4Offset+4:])
	}
	if w.meta.Packet(st.app, fromClient, seq, data[p.PayloadOffset:p.PayloadOffset+p.PayloadLen], p.Tuple.SrcPort, p.Tuple.DstPort) {
		w.meta.Release(st.app)
		st.mflags |= mDone
	} else if st.app.DirDone(fromClient) {
		st.mflags |= dirDone
	}
}

// keyForward reports whether a TCP or UDP tuple runs in its key's forward
// direction (flow.Tuple.Key without building the key).
func keyForward(t *flow.Tuple) bool {
	c := bytes.Compare(t.Src[:], t.Dst[:])
	return c < 0 || c == 0 && t.SrcPort <= t.DstPort
}

// timeline counts a packet in its flow's open interval; when the packet
// falls past it, the open interval goes into the flow's timeline (made
// on the flow's second interval) and a new one opens. Intervals are
// aligned on the flow's first packet.
func (w *worker) timeline(st *flowState, ts int64, wireLen int) {
	iv := w.tlInterval
	if st.tlEnd == 0 {
		st.tlStart, st.tlEnd = ts, ts+iv
	} else if ts >= st.tlEnd {
		if st.tl == nil {
			if n := len(w.tlPool); n > 0 {
				st.tl = w.tlPool[n-1]
				w.tlPool = w.tlPool[:n-1]
			} else {
				st.tl = new(flow.TimelineBuilder)
			}
			st.tl.Init(w.cfg.Timeline.Interval, w.cfg.Timeline.MaxPoints)
		}
		st.tl.Add((st.tlEnd-iv)/1e6, uint64(st.tlPkts), st.tlBytes)
		k := (ts - st.tlStart) / iv
		st.tlEnd = st.tlStart + (k+1)*iv
		st.tlPkts, st.tlBytes = 0, 0
	}
	st.tlPkts++
	st.tlBytes += uint64(wireLen)
}

// heldPacket is a fragment's bytes kept while the flow table holds it.
type heldPacket struct {
	data []byte
	ci   capture.CaptureInfo
}

// onHeld is the flow table's callback for a held fragment once it is
// accounted (in its datagram's flow, or a port-less flow): the bytes go
// into that flow's block like any packet's, so nothing is lost from
// storage.
func (w *worker) onHeld(ref uint32, st *flowState, n int) {
	h, ok := w.held[ref]
	if !ok {
		return
	}
	delete(w.held, ref)
	if st == nil {
		return
	}
	if w.tlInterval > 0 {
		w.timeline(st, h.ci.Timestamp, h.ci.Length)
	}
	if n > 0 && !w.cfg.Blocks.Disabled {
		w.store(st, h.data[:n], &h.ci)
	}
}

// advance moves the worker's timers to ts (the latest packet time, or the
// wall clock on an idle interface) through the table's Clock, which never
// runs backwards: expired flows end, old blocks close, counters are
// published.
func (w *worker) advance(ts int64) {
	w.table.Advance(ts)
	now := w.table.Clock().Now()
	for w.fifoHead < len(w.fifo) && now-w.fifo[w.fifoHead].since >= w.maxAge {
		w.closeOldest(false)
	}
	w.ring.shrink()
	w.publish(now)
}

func (w *worker) publish(now int64) {
	w.lastPub = now
	w.stats.Flows = w.table.Stats()
	if w.stats.Flows.ClockSteps > 0 && !w.stepLogged {
		w.stepLogged = true
		_, from, to := w.table.Clock().Steps()
		w.log.Warn("packet time stepped back; timeouts and block ages keep running on a monotonic clock (counted in tapir_sensor_clock_steps_total, logged once)",
			"from", time.Unix(0, from).UTC(), "to", time.Unix(0, to).UTC())
	}
	if w.stats.Flows.TunnelChainChanged > 0 && !w.chainLogged {
		w.chainLogged = true
		w.log.Warn("packets of a flow came through different tunnel chains; its record keeps its first packet's chain (counted in tapir_sensor_tunnel_chain_changed_total, logged once)")
	}
	if w.meta != nil {
		w.stats.Metadata = w.meta.Stats()
	}
	w.stats.OpenBlockBytes = uint64(w.buffered())
	w.mu.Lock()
	w.snap = w.stats
	w.mu.Unlock()
}

func (w *worker) snapshot() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}
