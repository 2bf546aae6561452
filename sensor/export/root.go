// Package export is the sensor's output: it batches flow records and
// encoded packet blocks and streams them to a collector
// (tapir.v1.Ingest.Stream), keeping every batch until the collector acks
// it as durable.
//
// Data path: AddRecord/AddBlock (any goroutine) append to the open batch;
// a batch is closed by size or age (MaxDelay), numbered with a sequence
// number that survives restarts (sensor/spool reserves them durably), and
// queued in memory. While the collector is unreachable, or when the
// memory queue is full, batches go to the on-disk spool instead (and the
// memory queue's unspooled batches are spilled there first, so the spool
// stays in seq order). The sender sends at most MaxInflight unacked
// batches, oldest first, from memory then spool; an ack drops everything
// up to its seq. On any stream error it reconnects with exponential
// backoff and jitter to the next collector address and resends every
// unacked batch (the store deduplicates). When the spool is full its
// oldest batches are dropped and counted. Stop flushes the open batch,
// waits briefly for acks and spools whatever is left, so a restart loses
// nothing that was added.
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/spool"
)

// Sentinel errors.
var (
	// ErrStopped: the exporter is stopped.
	ErrStopped = errors.New("export: stopped")
	// ErrNotStarted: AddRecord/AddBlock before Start.
	ErrNotStarted = errors.New("export: not started")
	// ErrRefused: every collector refused the sensor for a reason that
	// retrying cannot fix (certificate from another CA, expired or
	// unreadable certificate, sensor id not the certificate's, the hello
	// refused). The exporter stops connecting; batches go to the spool.
	ErrRefused = errors.New("export: refused by the collector")
)

// trailerRejectedSeq mirrors collector/ingest.TrailerRejectedSeq (the
// sensor does not import the collector).
const trailerRejectedSeq = "tapir-rejected-seq"

// Dependencies of the exporter.
type Dependencies struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Stats returns the sensor's cumulative counters for SensorStats
	// (optional). The exporter adds its own (export_*, spool_*).
	Stats func() map[string]uint64
	// OnConfig receives configuration pushed by the collector (optional).
	// It is called from the receiving goroutine and must not block long.
	OnConfig func(*tapirv1.SensorConfig)
}

// Stats are the exporter's counters.
type Stats struct {
	Batches      uint64 // batches closed
	Sent         uint64 // batch sends (resends included)
	Acked        uint64 // ack watermark
	Rejected     uint64 // batches refused by the collector as malformed (dropped)
	Reconnects   uint64
	Spooled      uint64 // batches written to the spool
	SpoolErrors  uint64 // batches lost to a spool write error
	QueueBatches int    // unacked batches in memory
	Inflight     int    // sent, not acked
	Connected    bool
	Spool        spool.Stats
	// Epoch is the sequence space of the batches (see spool.Spool.Epoch).
	Epoch uint64
}

type item struct {
	seq     uint64
	frame   frame
	inSpool bool
}

// Exporter batches and ships records and blocks. AddRecord, AddBlock and
// Stats are safe for concurrent use; Start and Stop are not to be called
// concurrently with each other.
type Exporter struct {
	cfg   Config
	deps  Dependencies
	log   *slog.Logger
	spool *spool.Spool
	m     *metrics

	// open batch
	bmu       sync.Mutex
	cur       *tapirv1.Batch
	curBytes  int
	curStart  time.Time
	lastStats time.Time

	// queue
	qmu       sync.Mutex
	items     []*item // unacked, seq order
	sent      int     // items[:sent] were sent on the current stream
	spoolMode bool    // the spool holds batches not loaded into items
	connected bool
	paused    bool
	inflight  int // current max in flight (FlowControl may lower it)
	acked     uint64
	spoolLast uint64 // highest seq written to the spool
	wake      chan struct{}
	epoch     uint64 // the spool's sequence epoch, stamped on every batch sent
	dialOpts  []grpc.DialOption

	// fatal is set once every collector refused the sensor permanently;
	// failed is closed then.
	fmu    sync.Mutex
	fatal  error
	failed chan struct{}

	started, stopped atomic.Bool
	ctx              context.Context
	cancel           context.CancelFunc
	wg               sync.WaitGroup
	stopOnce         sync.Once

	nBatches, nSent, nRejected, nReconnects, nSpooled, nSpoolErrors atomic.Uint64
}

// New validates the configuration and opens nothing.
func New(cfg Config, deps Dependencies) (*Exporter, error) {
	if err := cfg.ValidateAll(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{cfg: cfg, deps: deps, log: deps.Logger, wake: make(chan struct{}, 1), inflight: cfg.MaxInflight,
		failed: make(chan struct{})}
	m, err := newMetrics(e, deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	e.m = m
	return e, nil
}

// Start loads the TLS files, opens the spool (recovering it) and starts
// the batching and sending goroutines. Unreadable TLS files fail it with
// ErrRefused: no retry can fix them.
func (e *Exporter) Start() error {
	if e.started.Load() {
		return errors.New("export: already started")
	}
	opts, err := e.dialOptions()
	if err != nil {
		return fmt.Errorf("%w: collector tls: %w", ErrRefused, err)
	}
	e.dialOpts = opts
	sp, err := spool.Open(e.cfg.Spool, e.log)
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	e.spool = sp
	e.epoch = sp.Epoch()
	e.acked = sp.Acked()
	if sp.Pending(0) {
		e.spoolMode = true
		e.spoolLast = ^uint64(0) >> 1 // unknown: ack the spool on every ack
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.started.Store(true)
	e.wg.Add(2)
	go e.flusher()
	go e.sender()
	return nil
}

// AddRecord adds a copy of the flow record to the open batch.
func (e *Exporter) AddRecord(rec *flow.Record) error {
	if !e.started.Load() {
		return ErrNotStarted
	}
	if e.stopped.Load() {
		return ErrStopped
	}
	fr := tapirv1.FromRecord(rec, nil)
	e.bmu.Lock()
	defer e.bmu.Unlock()
	e.openLocked()
	e.cur.Flows = append(e.cur.Flows, fr)
	e.curBytes += 128 + len(fr.CommunityId) + len(fr.Interface) + len(fr.SensorId)
	if len(e.cur.Flows) >= e.cfg.MaxBatchRecords || e.curBytes >= e.cfg.MaxBatchBytes {
		e.flushLocked()
	}
	return nil
}

// AddBlock adds a copy of an encoded packet block to the open batch.
func (e *Exporter) AddBlock(encoded []byte) error {
	if !e.started.Load() {
		return ErrNotStarted
	}
	if e.stopped.Load() {
		return ErrStopped
	}
	pb := &tapirv1.PacketBlock{Data: append([]byte(nil), encoded...)}
	e.bmu.Lock()
	defer e.bmu.Unlock()
	e.openLocked()
	e.cur.Blocks = append(e.cur.Blocks, pb)
	e.curBytes += len(encoded) + 4
	if len(e.cur.Blocks) >= e.cfg.MaxBatchBlocks || e.curBytes >= e.cfg.MaxBatchBytes {
		e.flushLocked()
	}
	return nil
}

func (e *Exporter) openLocked() {
	if e.cur == nil {
		e.cur = &tapirv1.Batch{}
		e.curStart = time.Now()
		e.curBytes = 0
	}
}

// Flush closes the open batch now (if it holds anything).
func (e *Exporter) Flush() {
	e.bmu.Lock()
	defer e.bmu.Unlock()
	e.flushLocked()
}

func (e *Exporter) flushLocked() {
	now := time.Now()
	statsDue := now.Sub(e.lastStats) >= e.cfg.StatsInterval
	if e.cur == nil && !statsDue {
		return
	}
	b := e.cur
	if b == nil {
		b = &tapirv1.Batch{}
	}
	e.cur = nil
	if statsDue {
		b.Stats = &tapirv1.SensorStats{UnixNano: now.UnixNano(), Counters: e.counters()}
		e.lastStats = now
	}
	seq, err := e.spool.NextSeq()
	if err != nil {
		e.nSpoolErrors.Add(1)
		e.log.Error("allocate batch seq; batch lost", "err", err)
		return
	}
	b.Seq = seq
	b.CreatedUnixNano = now.UnixNano()
	data, err := proto.Marshal(b)
	if err != nil {
		e.log.Error("marshal batch; batch lost", "err", err)
		e.nSpoolErrors.Add(1)
		return
	}
	e.nBatches.Add(1)
	e.enqueue(seq, data)
}

func (e *Exporter) counters() map[string]uint64 {
	var c map[string]uint64
	if e.deps.Stats != nil {
		c = e.deps.Stats()
	}
	if c == nil {
		c = map[string]uint64{}
	}
	st := e.spool.Stats()
	c["export_batches"] = e.nBatches.Load()
	c["export_reconnects"] = e.nReconnects.Load()
	c["export_rejected_batches"] = e.nRejected.Load()
	c["export_spool_errors"] = e.nSpoolErrors.Load()
	c["spool_bytes"] = uint64(st.Bytes)
	c["spool_dropped_batches"] = st.DroppedBatches
	c["spool_dropped_bytes"] = st.DroppedBytes
	c["spool_torn_records"] = st.TornRecords
	c["spool_corrupt_records"] = st.CorruptRecords
	return c
}

// enqueue queues a closed batch in memory, or in the spool when the
// collector is unreachable, the memory queue is full, or the spool
// already holds older unsent batches.
func (e *Exporter) enqueue(seq uint64, data []byte) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if !e.spoolMode && e.connected && len(e.items) < e.cfg.QueueBatches {
		e.items = append(e.items, &item{seq: seq, frame: batchFrame(data, e.epoch)})
	} else {
		e.spillLocked()
		e.appendSpoolLocked(seq, data)
		e.spoolMode = true
	}
	e.signal()
}

// spillLocked writes every in-memory batch not yet in the spool to it.
func (e *Exporter) spillLocked() {
	for _, it := range e.items {
		if it.inSpool {
			continue
		}
		it.inSpool = true
		e.appendSpoolLocked(it.seq, framePayload(it.frame))
	}
}

func (e *Exporter) appendSpoolLocked(seq uint64, payload []byte) {
	if seq <= e.acked {
		return
	}
	if err := e.spool.Append(seq, payload); err != nil {
		if errors.Is(err, spool.ErrSeqOrder) {
			return // already spooled
		}
		e.nSpoolErrors.Add(1)
		e.log.Error("spool batch", "seq", seq, "err", err)
		return
	}
	e.nSpooled.Add(1)
	e.spoolLast = max(e.spoolLast, seq)
}

func (e *Exporter) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// refillLocked loads spooled batches into memory, up to QueueBatches.
func (e *Exporter) refillLocked() {
	if !e.spoolMode || len(e.items) >= e.cfg.QueueBatches {
		return
	}
	after := e.acked
	if n := len(e.items); n > 0 {
		after = max(after, e.items[n-1].seq)
	}
	_, err := e.spool.ReadAfter(after, e.cfg.QueueBatches-len(e.items), func(seq uint64, p []byte) error {
		e.items = append(e.items, &item{seq: seq, frame: batchFrame(p, e.epoch), inSpool: true})
		return nil
	})
	if err != nil {
		e.log.Error("read spool", "err", err)
	}
	last := after
	if n := len(e.items); n > 0 {
		last = e.items[n-1].seq
	}
	if !e.spool.Pending(last) {
		e.spoolMode = false
	}
}

// ack drops every batch up to seq.
func (e *Exporter) ack(seq uint64) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if seq <= e.acked {
		return
	}
	e.acked = seq
	n := 0
	for n < len(e.items) && e.items[n].seq <= seq {
		n++
	}
	clear(e.items[:n])
	e.items = e.items[n:]
	e.sent = max(0, e.sent-n)
	if e.spoolLast > 0 {
		if err := e.spool.Ack(seq); err != nil {
			e.log.Error("spool ack", "err", err)
		}
		if seq >= e.spoolLast {
			e.spoolLast = 0
		}
	}
	e.signal()
}

// reject drops the batch the collector refused as malformed.
func (e *Exporter) reject(seq uint64) {
	e.qmu.Lock()
	for i, it := range e.items {
		if it.seq == seq {
			e.items = append(e.items[:i], e.items[i+1:]...)
			if i < e.sent {
				e.sent--
			}
			break
		}
	}
	first := len(e.items) == 0 || e.items[0].seq > seq
	e.qmu.Unlock()
	e.nRejected.Add(1)
	e.log.Error("collector rejected a batch as malformed; dropped", "seq", seq)
	if first {
		e.ack(seq)
	}
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	e.qmu.Lock()
	st := Stats{
		Acked: e.acked, QueueBatches: len(e.items), Inflight: e.sent, Connected: e.connected,
	}
	e.qmu.Unlock()
	st.Epoch = e.epoch
	st.Batches = e.nBatches.Load()
	st.Sent = e.nSent.Load()
	st.Rejected = e.nRejected.Load()
	st.Reconnects = e.nReconnects.Load()
	st.Spooled = e.nSpooled.Load()
	st.SpoolErrors = e.nSpoolErrors.Load()
	if e.spool != nil {
		st.Spool = e.spool.Stats()
	}
	return st
}

func (e *Exporter) flusher() {
	defer e.wg.Done()
	t := time.NewTicker(max(e.cfg.MaxDelay/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			e.bmu.Lock()
			if (e.cur != nil && now.Sub(e.curStart) >= e.cfg.MaxDelay) || now.Sub(e.lastStats) >= e.cfg.StatsInterval {
				e.flushLocked()
			}
			e.bmu.Unlock()
		}
	}
}

func (e *Exporter) sender() {
	defer e.wg.Done()
	backoff := e.cfg.ReconnectMin
	refusals := 0 // consecutive permanent refusals
	for i := 0; ; i++ {
		addr := e.cfg.Collectors[i%len(e.cfg.Collectors)]
		start := time.Now()
		err := e.session(addr)
		e.setDisconnected()
		if e.ctx.Err() != nil {
			return
		}
		if permanent(err) {
			refusals++
			e.log.Error("collector refused the sensor", "collector", addr, "sensor", e.cfg.SensorID, "err", err)
			if refusals >= len(e.cfg.Collectors) {
				e.fail(fmt.Errorf("%w: %w", ErrRefused, err))
				return
			}
		} else {
			refusals = 0
		}
		e.nReconnects.Add(1)
		if time.Since(start) > 30*time.Second {
			backoff = e.cfg.ReconnectMin // the connection was healthy for a while
		}
		e.log.Warn("collector stream ended; reconnecting", "collector", addr, "err", err, "backoff", backoff)
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(d):
		case <-e.ctx.Done():
			return
		}
		backoff = min(backoff*2, e.cfg.ReconnectMax)
	}
}

func (e *Exporter) setDisconnected() {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.connected = false
	e.paused = false
	e.sent = 0
	// Everything unacked goes to disk while the collector is unreachable.
	if len(e.items) > 0 {
		e.spillLocked()
		e.spoolMode = true
	}
}

func (e *Exporter) dialOptions() ([]grpc.DialOption, error) {
	opts := []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(newRawCodec())),
	}
	if e.cfg.TLS.Insecure {
		return append(opts, grpc.WithTransportCredentials(insecure.NewCredentials())), nil
	}
	tc, err := tlsconfig.Client(e.cfg.TLS)
	if err != nil {
		return nil, err
	}
	return append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc))), nil
}

var streamDesc = &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

// fail records a permanent refusal: the exporter stops connecting.
func (e *Exporter) fail(err error) {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	if e.fatal != nil {
		return
	}
	e.fatal = err
	close(e.failed)
	e.log.Error("giving up on the collectors: retrying cannot fix this; batches stay in the spool", "err", err)
}

// Err returns the permanent refusal that stopped the exporter (wrapping
// ErrRefused), or nil.
func (e *Exporter) Err() error {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	return e.fatal
}

// Failed is closed when the exporter gives up (see Err).
func (e *Exporter) Failed() <-chan struct{} { return e.failed }

// permanent reports whether a stream error is one no retry can fix: the
// collector refused the sensor's identity or its hello, or the TLS
// handshake failed on a certificate (another CA, expired, missing).
// Network errors, timeouts, store errors and shutdowns are temporary.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		return true
	case codes.InvalidArgument:
		return !errors.Is(err, errBatchRejected) // the hello, not one batch
	case codes.Unavailable:
		msg := st.Message()
		return strings.Contains(msg, "x509: ") || strings.Contains(msg, "tls: ") &&
			(strings.Contains(msg, "certificate") || strings.Contains(msg, "authority"))
	}
	return false
}

// errBatchRejected marks an InvalidArgument that named one batch (the
// batch is dropped; the stream is retried).
var errBatchRejected = errors.New("export: batch rejected")

// streamErr interprets the end of a stream; a rejected batch is dropped.
func (e *Exporter) streamErr(st grpc.ClientStream, err error) error {
	if status.Code(err) == codes.InvalidArgument {
		if v := metadataGet(st.Trailer(), trailerRejectedSeq); v != "" {
			if seq, perr := strconv.ParseUint(v, 10, 64); perr == nil {
				e.reject(seq)
				return fmt.Errorf("%w %d: %w", errBatchRejected, seq, err)
			}
		}
	}
	return err
}

func metadataGet(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Stop flushes the open batch, waits up to StopAckTimeout for the
// collector to ack what is in flight, spools everything still unacked and
// closes the spool. It is idempotent.
func (e *Exporter) Stop() error {
	var err error
	e.stopOnce.Do(func() {
		if !e.started.Load() {
			return
		}
		e.Flush()
		e.stopped.Store(true)
		deadline := time.Now().Add(e.cfg.StopAckTimeout)
		for time.Now().Before(deadline) {
			e.qmu.Lock()
			idle := len(e.items) == 0 && !e.spoolMode
			conn := e.connected
			e.qmu.Unlock()
			if idle || !conn {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.cancel()
		e.wg.Wait()
		e.qmu.Lock()
		e.spillLocked()
		e.qmu.Unlock()
		err = e.spool.Close()
	})
	return err
}
