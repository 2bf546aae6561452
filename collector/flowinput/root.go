// Package flowinput is the collector's input for flows exported by
// routers, switches and firewalls: UDP listeners for NetFlow v5/v9, IPFIX
// and sFlow v5, decoded with goflow2's decoders into tapir flow records
// (exporter address, interfaces, sampling rate with scaled counters,
// Community ID), which the collector then enriches, stores and publishes
// like sensor records. NetFlow v9 and IPFIX templates are kept per
// exporter and observation domain and persisted to a file, so that a
// restart does not lose data sets until the next template refresh.
//
// Unidirectional records (NetFlow v5, v9 and IPFIX without RFC 5103
// reverse elements, sFlow samples) count only their source direction.
// The records have no packets: their SensorID is "exporter:<address>".
//
// Lifecycle: New is inert; Start opens the sockets and starts one reader
// goroutine per listener and one delivery goroutine; Stop is idempotent,
// closes the sockets, delivers what is pending and saves the templates.
package flowinput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
)

// Batch is a group of records from one exporter. SensorID is
// "exporter:<address>".
type Batch struct {
	SensorID string
	Records  []flow.Record
}

// Dependencies of the input.
type Dependencies struct {
	// Deliver receives batches, one goroutine at a time; an error drops
	// the batch (counted, logged rate-limited). Required.
	Deliver func(ctx context.Context, b Batch) error
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for metrics; nil exports none.
	Registerer prometheus.Registerer
}

// Sentinel errors.
var (
	ErrStarted   = errors.New("flowinput: already started")
	ErrNoDeliver = errors.New("flowinput: no Deliver function")
)

// Input is the flow input component. Its methods are safe for concurrent use.
type Input struct {
	cfg       Config
	deps      Dependencies
	log       *slog.Logger
	m         *metrics
	templates *Templates
	dec       *Decoder

	mu      sync.Mutex
	started bool
	stopped bool
	conns   []*net.UDPConn
	queue   chan Batch
	pending map[string][]flow.Record
	wg      sync.WaitGroup
	readers sync.WaitGroup
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	lastLog atomic.Int64 // Unix ns of the last rate-limited warning
}

// New validates the configuration and builds an inert input.
func New(cfg Config, deps Dependencies) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Deliver == nil {
		return nil, ErrNoDeliver
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	t := NewTemplates(cfg.MaxTemplates)
	ctx, cancel := context.WithCancel(context.Background())
	return &Input{cfg: cfg, deps: deps, log: deps.Logger, m: m, templates: t, dec: NewDecoder(cfg, t, m),
		pending: map[string][]flow.Record{}, stop: make(chan struct{}), ctx: ctx, cancel: cancel}, nil
}

// listener is one configured socket.
type listener struct {
	name  string
	addr  string
	proto Protocol
}

// Start loads the saved templates and opens the configured listeners.
func (in *Input) Start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.started {
		return ErrStarted
	}
	in.started = true
	if p := in.templatesPath(); p != "" {
		n, err := in.templates.Load(p)
		if err != nil {
			in.log.Warn("flow templates not loaded", "path", p, "err", err)
		} else if n > 0 {
			in.log.Info("flow templates loaded", "path", p, "templates", n)
		}
	}
	for _, l := range in.cfg.listeners() {
		if l.addr == "" {
			continue
		}
		ua, err := net.ResolveUDPAddr("udp", l.addr)
		if err != nil {
			in.closeConns()
			return fmt.Errorf("flow input %s: %w", l.name, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			in.closeConns()
			return fmt.Errorf("flow input %s listen: %w", l.name, err)
		}
		if in.cfg.ReadBuffer > 0 {
			_ = c.SetReadBuffer(in.cfg.ReadBuffer)
		}
		if err := enableDropCount(c); err != nil {
			in.log.Warn("flow input: socket drops will not be counted", "protocol", l.name, "err", err)
		}
		in.conns = append(in.conns, c)
		in.log.Info("flow input listening", "protocol", l.name, "addr", c.LocalAddr().String())
		in.readers.Add(1)
		go in.read(c, l, &dropCounter{c: in.m.socketDrops.WithLabelValues(l.name)})
	}
	in.queue = make(chan Batch, in.cfg.QueueBatches)
	in.wg.Add(2)
	go in.deliverLoop()
	go in.flushLoop()
	return nil
}

func (in *Input) closeConns() {
	for _, c := range in.conns {
		c.Close()
	}
}

// Addrs returns the listening addresses in the order netflow, ipfix,
// sflow (those configured), after Start.
func (in *Input) Addrs() []net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]net.Addr, len(in.conns))
	for i, c := range in.conns {
		out[i] = c.LocalAddr()
	}
	return out
}

// Stats returns per-exporter counters.
func (in *Input) Stats() map[string]ExporterStats { return in.dec.Stats() }

// Decoder returns the input's decoder (for tests and benchmarks).
func (in *Input) Decoder() *Decoder { return in.dec }

func (in *Input) templatesPath() string {
	if in.cfg.TemplatesFile == "-" {
		return ""
	}
	return in.cfg.TemplatesFile
}

// read is one listener's loop: receive, decode, queue. drops counts the
// datagrams the kernel dropped on this socket (receive buffer full).
func (in *Input) read(c *net.UDPConn, l listener, drops *dropCounter) {
	defer in.readers.Done()
	buf := make([]byte, 65535)
	oob := make([]byte, oobSize)
	var recs []flow.Record
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if total, ok := socketDrops(oob[:oobn]); ok && drops.update(total) {
			in.rateLog("flow input: the kernel dropped datagrams (receive buffer full; raise read_buffer)",
				"listener", l.name, "dropped_since_start", total)
		}
		recs, err = in.dec.Decode(from.Addr(), l.proto, buf[:n], time.Now(), recs[:0])
		if errors.Is(err, ErrTooManyExporters) {
			in.rateLog("flow input: datagram dropped: too many exporters (max_exporters)",
				"exporter", from.Addr().String(), "max_exporters", in.cfg.MaxExporters, "dropped_total", in.dec.Overflow())
		}
		if len(recs) == 0 {
			continue
		}
		in.add(recs)
	}
}

// dropCounter turns a socket's cumulative drop count (SO_RXQ_OVFL) into
// increments of a counter. One reader goroutine uses it.
type dropCounter struct {
	c    prometheus.Counter
	last uint32 // the count last seen
}

// update records the socket's drop count; it reports whether it grew.
func (d *dropCounter) update(total uint32) bool {
	if total == d.last {
		return false
	}
	d.c.Add(float64(total - d.last)) // uint32 arithmetic: wrap-safe
	d.last = total
	return true
}

// add appends records to their exporter's pending list and queues the
// list once it is full.
func (in *Input) add(recs []flow.Record) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range recs {
		sid := recs[i].SensorID
		p := append(in.pending[sid], recs[i])
		if len(p) >= in.cfg.MaxBatch {
			in.enqueue(Batch{SensorID: sid, Records: p})
			p = nil
		}
		in.pending[sid] = p
	}
}

// enqueue queues a batch or drops it when the queue is full. in.mu held.
func (in *Input) enqueue(b Batch) {
	select {
	case in.queue <- b:
	default:
		in.m.dropped.WithLabelValues("queue_full").Add(float64(len(b.Records)))
		in.rateLog("flow records dropped: delivery queue full", "exporter", b.SensorID, "records", len(b.Records))
	}
}

// flushPending queues every exporter's pending records. in.mu held.
func (in *Input) flushPending() {
	for sid, p := range in.pending {
		if len(p) > 0 {
			in.enqueue(Batch{SensorID: sid, Records: p})
		}
		delete(in.pending, sid)
	}
}

// rateLog logs a warning unless one was logged in the last 10 s. Safe
// for concurrent use.
func (in *Input) rateLog(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := in.lastLog.Load()
	if now-last < int64(10*time.Second) || !in.lastLog.CompareAndSwap(last, now) {
		return
	}
	in.log.Warn(msg, args...)
}

// flushLoop delivers pending records every FlushInterval and saves
// changed templates.
func (in *Input) flushLoop() {
	defer in.wg.Done()
	t := time.NewTicker(in.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-in.stop:
			return
		case <-t.C:
			in.mu.Lock()
			in.flushPending()
			in.mu.Unlock()
			in.saveTemplates()
		}
	}
}

func (in *Input) saveTemplates() {
	p := in.templatesPath()
	if p == "" || !in.templates.Dirty() {
		return
	}
	if err := in.templates.Save(p); err != nil {
		in.rateLog("flow templates not saved", "path", p, "err", err)
	}
}

func (in *Input) deliverLoop() {
	defer in.wg.Done()
	for b := range in.queue {
		if err := in.deps.Deliver(in.ctx, b); err != nil {
			in.m.dropped.WithLabelValues("deliver_error").Add(float64(len(b.Records)))
			in.rateLog("flow records not delivered", "exporter", b.SensorID, "records", len(b.Records), "err", err)
		}
	}
}

// Stop closes the listeners, delivers the pending records, saves the
// templates and waits. Idempotent.
func (in *Input) Stop() {
	in.mu.Lock()
	if in.stopped || !in.started {
		in.stopped = true
		in.mu.Unlock()
		return
	}
	in.stopped = true
	in.closeConns()
	in.mu.Unlock()
	in.readers.Wait()
	close(in.stop)
	in.mu.Lock()
	in.flushPending()
	close(in.queue)
	in.mu.Unlock()
	in.wg.Wait()
	in.cancel()
	if p := in.templatesPath(); p != "" {
		if err := in.templates.Save(p); err != nil {
			in.log.Warn("flow templates not saved", "path", p, "err", err)
		}
	}
}
