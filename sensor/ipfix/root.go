// Package ipfix exports the sensor's flow records as IPFIX (RFC 7011)
// over UDP to any flow collector (nfcapd, Akvorado, goflow2, ntopng,
// tapir's own flow input).
//
// Each flow becomes one biflow data record (RFC 5103): the initiator's
// 5-tuple, VLAN, packetDeltaCount/octetDeltaCount of the initiator's
// direction and the reverse (PEN 29305) counters and TCP flags of the
// responder's, flowStartMilliseconds/flowEndMilliseconds, tcpControlBits
// and flowEndReason, plus two tapir elements under a private enterprise
// number (DocumentationPEN, a placeholder, by default): the Community ID
// (IECommunityID, a variable-length string) and the tapir flow id
// (IEFlowID, 16 octets). ICMP type and code ride in the destination port
// as type<<8|code, as NetFlow does. Octet counts are the sensor's: frame
// lengths on the wire, link header included.
//
// Only final records are exported unless ExportUpdates is set; updates
// are then exported as deltas since the flow's previous report. Records of
// traffic that is not IP (flow.FamilyLink) are skipped and counted.
package ipfix

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
)

// Dependencies of the exporter. Logger and Registerer may be nil.
type Dependencies struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now returns the current time (message export times and template
	// refresh); time.Now when nil.
	Now func() time.Time
}

// Exporter is an IPFIX exporter and a sensor output sink (AddRecord,
// AddBlock). AddRecord is safe for concurrent use; it encodes under a
// mutex and hands full messages to a sending goroutine through a bounded
// queue, waiting at most QueueWait for room (then the message is dropped
// and counted). New is inert; Start opens the socket; Stop flushes,
// sends what is queued and closes, and is idempotent.
type Exporter struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	m   *metrics

	pool sync.Pool

	mu      sync.Mutex
	enc     *encoder
	last    map[flow.ID]sent // ExportUpdates: counters already reported
	started bool
	stopped bool

	conn  *net.UDPConn
	queue chan []byte
	done  chan struct{}
	// flushExited is closed when flushLoop has returned.
	flushExited chan struct{}
	wg          sync.WaitGroup
	lastLog     time.Time
	logMu       sync.Mutex
}

// sent is what the previous reports of a flow counted.
type sent struct{ pkts, octs, rpkts, rocts uint64 }

// maxTracked bounds the flows whose reported counters are remembered
// (ExportUpdates); beyond it an update is exported with its counts since
// the flow's start and counted as untracked.
const maxTracked = 1 << 20

// Errors of the exporter.
var (
	ErrNotStarted = errors.New("ipfix: exporter not started")
	ErrStopped    = errors.New("ipfix: exporter stopped")
)

// New validates the configuration and builds an exporter; it opens
// nothing. cfg.Collector must be set.
func New(cfg Config, deps Dependencies) (*Exporter, error) {
	if cfg.Collector == "" {
		return nil, fmt.Errorf("%w: collector is empty", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	x := &Exporter{cfg: cfg, log: deps.Logger, now: deps.Now, m: m, last: map[flow.ID]sent{}}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if x.now == nil {
		x.now = time.Now
	}
	mtu := cfg.MTU
	x.pool.New = func() any { b := make([]byte, 0, mtu); return &b }
	x.enc = newEncoder(&x.cfg, x.getBuf)
	return x, nil
}

func (x *Exporter) getBuf() []byte { return (*x.pool.Get().(*[]byte))[:0] }

func (x *Exporter) putBuf(b []byte) {
	b = b[:0]
	x.pool.Put(&b)
}

// Start resolves the collector address, opens the UDP socket and starts
// the sending and flushing goroutines.
func (x *Exporter) Start() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.started {
		return nil
	}
	raddr, err := net.ResolveUDPAddr("udp", x.cfg.Collector)
	if err != nil {
		return fmt.Errorf("resolve ipfix collector: %w", err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return fmt.Errorf("dial ipfix collector: %w", err)
	}
	x.conn, x.started = c, true
	x.queue = make(chan []byte, x.cfg.QueueMessages)
	x.done = make(chan struct{})
	x.flushExited = make(chan struct{})
	x.wg.Add(1)
	go x.sendLoop()
	go x.flushLoop()
	return nil
}

// AddBlock ignores the block: IPFIX carries flows only.
func (x *Exporter) AddBlock([]byte) error { return nil }

// AddRecord encodes the record into the current message; a full message
// is queued for sending. Updates (Reason == ReasonActive) are skipped
// unless ExportUpdates is set.
func (x *Exporter) AddRecord(rec *flow.Record) error {
	t := &rec.Tuple
	if t.Family != flow.FamilyIPv4 && t.Family != flow.FamilyIPv6 {
		x.m.skipped.Inc()
		return nil
	}
	final := rec.Reason.Final()
	if !final && !x.cfg.ExportUpdates {
		x.m.skippedUpdates.Inc()
		return nil
	}
	v := values{t: t, pkts: rec.Source.Packets, octs: rec.Source.Bytes,
		rpkts: rec.Destination.Packets, rocts: rec.Destination.Bytes,
		flags: rec.Source.TCPFlags, rflags: rec.Destination.TCPFlags,
		start: rec.Start, end: rec.End, reason: EndReason(rec.Reason), cid: rec.CommunityID, id: rec.ID}
	x.mu.Lock()
	if !x.started || x.stopped {
		err := ErrNotStarted
		if x.stopped {
			err = ErrStopped
		}
		x.mu.Unlock()
		x.m.droppedRecords.Inc()
		return err
	}
	if x.cfg.ExportUpdates {
		x.delta(rec, &v, final)
	}
	full := x.enc.add(&v, x.now())
	x.mu.Unlock()
	x.m.records.Inc()
	if full != nil {
		x.enqueue(full)
	}
	return nil
}

// delta turns cumulative counters into deltas since the flow's previous
// report. x.mu held.
func (x *Exporter) delta(rec *flow.Record, v *values, final bool) {
	cur := sent{v.pkts, v.octs, v.rpkts, v.rocts}
	if p, ok := x.last[rec.ID]; ok {
		v.pkts, v.octs, v.rpkts, v.rocts = cur.pkts-p.pkts, cur.octs-p.octs, cur.rpkts-p.rpkts, cur.rocts-p.rocts
	}
	switch {
	case final:
		delete(x.last, rec.ID)
	case len(x.last) < maxTracked:
		x.last[rec.ID] = cur
	default:
		x.m.untracked.Inc()
	}
}

// enqueue hands a finished message to the sender, waiting at most
// QueueWait for room.
func (x *Exporter) enqueue(msg []byte) {
	select {
	case x.queue <- msg:
		return
	default:
	}
	t := time.NewTimer(x.cfg.QueueWait)
	defer t.Stop()
	select {
	case x.queue <- msg:
	case <-t.C:
		x.m.droppedMessages.Inc()
		x.rateLog("ipfix message dropped: send queue full", "queue", cap(x.queue))
		x.putBuf(msg)
	}
}

// flush queues the part-filled message, if any.
func (x *Exporter) flush() {
	x.mu.Lock()
	var m []byte
	if x.enc.pending() {
		m = x.enc.finish(x.now())
	}
	x.mu.Unlock()
	if m != nil {
		x.enqueue(m)
	}
}

func (x *Exporter) flushLoop() {
	defer close(x.flushExited)
	tk := time.NewTicker(x.cfg.FlushInterval)
	defer tk.Stop()
	for {
		select {
		case <-tk.C:
			x.flush()
		case <-x.done:
			return
		}
	}
}

func (x *Exporter) sendLoop() {
	defer x.wg.Done()
	for m := range x.queue {
		if _, err := x.conn.Write(m); err != nil {
			x.m.sendErrors.Inc()
			x.rateLog("ipfix send failed", "collector", x.cfg.Collector, "err", err)
		} else {
			x.m.messages.Inc()
			x.m.bytes.Add(uint64(len(m)))
		}
		x.putBuf(m)
	}
}

// rateLog logs at most one warning per 10 seconds.
func (x *Exporter) rateLog(msg string, args ...any) {
	x.logMu.Lock()
	defer x.logMu.Unlock()
	if time.Since(x.lastLog) < 10*time.Second {
		return
	}
	x.lastLog = time.Now()
	x.log.Warn(msg, args...)
}

// Stop flushes the part-filled message, sends everything queued and
// closes the socket. It is idempotent; records added afterwards are
// refused (ErrStopped) and counted as dropped.
func (x *Exporter) Stop() error {
	x.mu.Lock()
	if !x.started || x.stopped {
		x.stopped = true
		x.mu.Unlock()
		return nil
	}
	x.stopped = true
	x.mu.Unlock()
	close(x.done)
	<-x.flushExited
	x.flush()
	close(x.queue)
	x.wg.Wait()
	if err := x.conn.Close(); err != nil {
		return fmt.Errorf("close ipfix socket: %w", err)
	}
	return nil
}

// Stats is a snapshot of the exporter's counters.
type Stats struct {
	Records, Messages, Bytes, SendErrors     uint64
	DroppedMessages, DroppedRecords, Skipped uint64
	// SequenceNumber is the count of data records in the messages built
	// so far (the next message's sequence number).
	SequenceNumber uint32
}

// Stats returns the exporter's counters.
func (x *Exporter) Stats() Stats {
	x.mu.Lock()
	seq := x.enc.seq
	x.mu.Unlock()
	return Stats{Records: x.m.records.Load(), Messages: x.m.messages.Load(), Bytes: x.m.bytes.Load(),
		SendErrors: x.m.sendErrors.Load(), DroppedMessages: x.m.droppedMessages.Load(),
		DroppedRecords: x.m.droppedRecords.Load(), Skipped: x.m.skipped.Load() + x.m.skippedUpdates.Load(),
		SequenceNumber: seq}
}
