package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
)

type service struct {
	tapirv1.UnimplementedIngestServer
	s *Server
}

// stream is one open sensor stream.
type stream struct {
	epoch   uint64
	control chan *tapirv1.CollectorMessage
}

// recvResult is one received message and the budget bytes it holds.
type recvResult struct {
	m     *tapirv1.SensorMessage
	bytes int64
	err   error
}

func validSensorID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// identify returns the remote address and the sensor identity of the
// stream's client certificate ("" on a plaintext server).
func (s *Server) identify(ctx context.Context) (remote, certID string, err error) {
	remote = "unknown"
	p, _ := peer.FromContext(ctx)
	if p != nil {
		remote = p.Addr.String()
	}
	if s.cfg.TLS.Insecure {
		return remote, "", nil
	}
	err = tlsconfig.ErrNoIdentity
	if p != nil {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			certID, err = tlsconfig.SensorID(&ti.State)
		}
	}
	if err != nil {
		return remote, "", s.refuse("refused_identity", "identity:"+remote, status.Error(codes.PermissionDenied, "certificate carries no sensor identity"),
			"sensor stream refused: no sensor identity in certificate", "remote", remote, "err", err)
	}
	return remote, certID, nil
}

// receive runs the stream's receiving goroutine: it reads one message at
// a time, takes its size from the in-flight budget (waiting, and so not
// reading, while the budget is spent), and hands it over on the returned
// channel. It ends after handing over a receive error, or when ctx ends
// (the handler returned); a message it could not hand over gives its
// bytes back.
func (s *Server) receive(ctx context.Context, ss grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage]) <-chan recvResult {
	out := make(chan recvResult)
	go func() {
		for {
			m, err := ss.Recv()
			r := recvResult{m: m, err: err}
			if err == nil {
				r.bytes = int64(proto.Size(m))
				if err := s.take(ctx, r.bytes); err != nil {
					return
				}
			}
			select {
			case out <- r:
			case <-ctx.Done():
				s.give(r.bytes)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// take acquires n bytes of the in-flight budget, counting waits.
func (s *Server) take(ctx context.Context, n int64) error {
	start := time.Now()
	waited, err := s.budget.acquire(ctx, n)
	if waited {
		s.metrics.budgetWaits.Inc()
		s.metrics.budgetWaitSeconds.Add(time.Since(start).Seconds())
	}
	if err == nil {
		s.metrics.inflightBytes.Add(float64(n))
	}
	return err
}

// give returns n bytes to the in-flight budget.
func (s *Server) give(n int64) {
	s.budget.release(n)
	s.metrics.inflightBytes.Sub(float64(n))
}

// awaitHello waits for the stream's first message, which must be a Hello.
func (s *Server) awaitHello(ctx context.Context, recv <-chan recvResult, remote string) (*tapirv1.Hello, error) {
	timer := time.NewTimer(s.cfg.HelloTimeout)
	defer timer.Stop()
	var hello *tapirv1.Hello
	select {
	case r := <-recv:
		s.give(r.bytes)
		if r.err != nil {
			return nil, r.err
		}
		hello = r.m.GetHello()
	case <-timer.C:
		return nil, s.refuse("refused_hello_timeout", "hello-timeout:"+remote, status.Error(codes.DeadlineExceeded, "no hello in time"),
			"sensor stream refused: no hello in time", "remote", remote)
	case <-s.shutdown:
		return nil, status.Error(codes.Unavailable, "collector shutting down")
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if hello == nil || !validSensorID(hello.SensorId) {
		return nil, s.refuse("refused_hello", "hello:"+remote, status.Error(codes.InvalidArgument, "first message must be a hello with a sensor id"),
			"sensor stream refused: first message is not a valid hello", "remote", remote)
	}
	return hello, nil
}

// Stream serves one sensor stream: the TLS identity, admission (the
// stream limits), the hello, registration, then the batch loop.
func (v *service) Stream(ss grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage]) error {
	s := v.s
	ctx := ss.Context()
	remote, certID, err := s.identify(ctx)
	if err != nil {
		return err
	}
	release, err := s.admit(remote)
	if err != nil {
		return err
	}
	defer release()
	// The per-sensor stream limit is claimed before anything is read:
	// under the certificate's identity with TLS, else under the hello's.
	if certID != "" {
		if err := s.claimSensor(certID, remote); err != nil {
			return err
		}
		defer s.unclaimSensor(certID)
	}
	// The receiving goroutine ends when the handler returns: the stream's
	// context is cancelled, and Recv fails.
	recv := s.receive(ctx, ss)
	hello, err := s.awaitHello(ctx, recv, remote)
	if err != nil {
		return err
	}
	id := hello.SensorId
	if err := s.matchIdentity(id, certID, remote); err != nil {
		return err
	}
	if certID == "" {
		if err := s.claimSensor(id, remote); err != nil {
			return err
		}
		defer s.unclaimSensor(id)
	}
	h := &handler{s: s, ss: ss, ctx: ctx, id: id, epoch: hello.Epoch}
	durable, disconnect, err := h.connect(hello, remote)
	if err != nil {
		return err
	}
	defer disconnect()
	if err := ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_HelloAck{HelloAck: &tapirv1.HelloAck{
		DurableSeq: durable, CollectorId: s.cfg.CollectorID, Epoch: h.epoch,
	}}}); err != nil {
		return err
	}
	return h.run(recv)
}

// refuse counts a refused stream under reason, logs msg (rate-limited
// per key) and returns err, the status the sensor gets.
func (s *Server) refuse(reason, key string, err error, msg string, args ...any) error {
	s.metrics.streams.WithLabelValues(reason).Inc()
	s.rlog.warn(key, msg, args...)
	return err
}

// admit takes one of the MaxStreams stream slots; release gives it back.
func (s *Server) admit(remote string) (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	default:
		return nil, s.refuse("refused_limit", "limit", status.Error(codes.ResourceExhausted, "too many sensor streams"),
			"sensor stream refused: too many streams", "remote", remote, "max", s.cfg.MaxStreams)
	}
}

// matchIdentity refuses, with TLS, a hello whose sensor id is not the
// certificate's.
func (s *Server) matchIdentity(id, certID, remote string) error {
	if s.cfg.TLS.Insecure || id == certID {
		return nil
	}
	return s.refuse("refused_identity", "mismatch:"+remote,
		status.Errorf(codes.PermissionDenied, "sensor id %q does not match certificate identity", id),
		"sensor stream refused: hello sensor id differs from certificate", "remote", remote, "hello_id", id, "cert_id", certID)
}

// connect registers the stream (open sessions, the sensor registry),
// reads the store's durable seq for its epoch and counts it accepted;
// disconnect undoes it when the stream ends.
func (h *handler) connect(hello *tapirv1.Hello, remote string) (durable uint64, disconnect func(), err error) {
	s, id, epoch := h.s, h.id, h.epoch
	h.st = &stream{epoch: epoch, control: make(chan *tapirv1.CollectorMessage, 4)}
	s.addSession(id, h.st, remote)
	durable, err = s.deps.Store.DurableSeq(h.ctx, id, epoch)
	if err != nil {
		err = s.refuse("refused_store", "store", status.Error(codes.Unavailable, "store unavailable"),
			"sensor stream refused: store durable seq", "sensor", id, "err", err)
		s.removeSession(id, h.st)
		return 0, nil, err
	}
	h.sess = s.deps.Registry.Connect(registryInfo(hello), remote, durable)
	s.metrics.streams.WithLabelValues("accepted").Inc()
	s.metrics.activeStream.Inc()
	s.log.Info("sensor connected", "sensor", id, "epoch", epoch, "remote", remote, "durable_seq", durable, "version", hello.Version)
	return durable, func() {
		s.log.Info("sensor stream closed", "sensor", id, "epoch", epoch, "remote", remote)
		s.metrics.activeStream.Dec()
		h.sess.Close()
		s.removeSession(id, h.st)
	}, nil
}

// registryInfo is what the sensor registry shows of a hello.
func registryInfo(hello *tapirv1.Hello) registry.Info {
	info := registry.Info{ID: hello.SensorId, Epoch: hello.Epoch, Hostname: hello.Hostname, Version: hello.Version, Capabilities: hello.Capabilities}
	for _, ifc := range hello.Interfaces {
		info.Interfaces = append(info.Interfaces, registry.Interface{Name: ifc.GetName(), LinkType: ifc.GetLinkType(), Snaplen: ifc.GetSnaplen()})
	}
	return info
}

// run is the batch loop: received batches are stored and acked, pushed
// configuration is sent, until the sensor goes away or the collector
// shuts down.
func (h *handler) run(recv <-chan recvResult) error {
	s := h.s
	for {
		select {
		case r := <-recv:
			err := h.handle(r)
			s.give(r.bytes)
			if err != nil || r.err != nil {
				return err
			}
		case m := <-h.st.control:
			if err := h.ss.Send(m); err != nil {
				return err
			}
			s.metrics.configPushes.Inc()
		case <-s.shutdown:
			return status.Error(codes.Unavailable, "collector shutting down")
		case <-h.ctx.Done():
			return nil // the sensor went away
		}
	}
}

// handler processes the batches of one stream, one at a time.
type handler struct {
	s     *Server
	ss    grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage]
	ctx   context.Context
	id    string
	epoch uint64
	st    *stream // the stream's entry in the open sessions
	sess  *registry.Session
	sb    storage.Batch
	acked uint64
}

// handle stores and acks one received batch. A receive error (the sensor
// closed or the connection broke) ends the stream quietly: it returns
// nil and the caller returns.
func (h *handler) handle(r recvResult) error {
	if r.err != nil {
		return nil
	}
	s, id := h.s, h.id
	b := r.m.GetBatch()
	if b == nil {
		s.metrics.batches.WithLabelValues("rejected").Inc()
		h.sess.Rejected(errors.New("unexpected message after hello"))
		return status.Error(codes.InvalidArgument, "expected a batch")
	}
	start := time.Now()
	nbytes, err := convertBatch(id, h.epoch, b, s.lim, &h.sb)
	if err != nil {
		return h.reject(b.Seq, "batch rejected", err)
	}
	if st := b.Stats; st != nil {
		h.sess.Stats(time.Unix(0, st.UnixNano), st.Counters)
	}
	if s.deps.Enrich != nil {
		for i := range h.sb.Records {
			s.deps.Enrich(&h.sb.Records[i])
		}
	}
	exp := h.expiredOnArrival()
	applied, err := s.write(h.ctx, &h.sb)
	clear(h.sb.Blocks) // drop references to the wire buffers
	if errors.Is(err, storage.ErrInvalidBatch) {
		// The store can never hold this batch: reject it (the sensor
		// drops and counts it) rather than have the sensor resend it
		// forever and block everything behind it.
		return h.reject(b.Seq, "batch rejected by the store", err)
	}
	if err != nil {
		if h.ctx.Err() != nil {
			return nil // the sensor went away mid-write
		}
		s.metrics.batches.WithLabelValues("store_error").Inc()
		h.sess.StoreError(err)
		s.rlog.warn("store-write:"+id, "store write failed; sensor will retry", "sensor", id, "seq", b.Seq, "err", err)
		return status.Error(codes.Unavailable, "store unavailable, retry later")
	}
	h.acked = max(h.acked, b.Seq)
	if applied {
		s.metrics.batches.WithLabelValues("stored").Inc()
		s.metrics.records.Add(float64(len(h.sb.Records)))
		s.metrics.blocks.Add(float64(len(h.sb.Blocks)))
		s.metrics.blockBytes.Add(float64(nbytes))
	} else {
		s.metrics.batches.WithLabelValues("duplicate").Inc()
	}
	if applied {
		h.noteExpired(exp)
	}
	h.sess.Batch(len(h.sb.Records), len(h.sb.Blocks), nbytes, applied, h.acked)
	if err := h.ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_Ack{Ack: &tapirv1.Ack{Seq: h.acked}}}); err != nil {
		return err
	}
	s.metrics.ackLatency.Observe(time.Since(start).Seconds())
	return nil
}

// expired describes the blocks of a batch already older than the packet
// retention on arrival: those whose last packet is before the cutoff
// (retention removes exactly those), their packets, and the span of
// their last packets.
type expired struct {
	cutoff         time.Time
	blocks         int
	packets        int
	oldest, newest int64
}

// expiredOnArrival measures the batch's blocks against the packet
// retention (before the write, which releases the blocks).
func (h *handler) expiredOnArrival() expired {
	ret := h.s.deps.PacketRetention
	if ret <= 0 || len(h.sb.Blocks) == 0 {
		return expired{}
	}
	e := expired{cutoff: h.s.deps.Now().Add(-ret)}
	cut := e.cutoff.UnixNano()
	for i := range h.sb.Blocks {
		m := &h.sb.Blocks[i].Meta
		if m.Last >= cut {
			continue
		}
		if e.blocks == 0 || m.Last < e.oldest {
			e.oldest = m.Last
		}
		e.newest = max(e.newest, m.Last)
		e.blocks++
		e.packets += int(m.Packets)
	}
	return e
}

// noteExpired counts and logs (rate limited per sensor) the blocks of a
// stored batch that arrived already older than the packet retention:
// they are kept, but the next retention run removes them, which an
// operator backfilling an old capture must hear at ingest.
func (h *handler) noteExpired(e expired) {
	if e.blocks == 0 {
		return
	}
	s := h.s
	s.metrics.expiredOnArrival.WithLabelValues(h.id).Add(float64(e.packets))
	s.rlog.warn("expired-on-arrival:"+h.id,
		"packets arrived already older than the packet retention: stored, but the next retention run removes them (raise retention.max_age to keep an old capture)",
		"sensor", h.id, "seq", h.sb.Seq, "blocks", e.blocks, "packets", e.packets,
		"oldest", time.Unix(0, e.oldest).UTC(), "newest", time.Unix(0, e.newest).UTC(),
		"retention_max_age", s.deps.PacketRetention, "cutoff", e.cutoff.UTC())
}

// reject ends the stream with InvalidArgument naming the batch (the
// sensor drops and counts it), counted and logged.
func (h *handler) reject(seq uint64, msg string, err error) error {
	s := h.s
	s.metrics.batches.WithLabelValues("rejected").Inc()
	if errors.Is(err, errOverLimit) {
		s.metrics.overLimit.Inc()
	}
	h.sess.Rejected(err)
	s.rlog.warn("rejected:"+h.id, msg, "sensor", h.id, "epoch", h.epoch, "seq", seq, "err", err)
	h.ss.SetTrailer(metadata.Pairs(TrailerRejectedSeq, strconv.FormatUint(seq, 10)))
	return status.Errorf(codes.InvalidArgument, "batch %d rejected: %v", seq, err)
}

func (s *Server) write(ctx context.Context, b *storage.Batch) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	applied, err := s.deps.Store.Write(ctx, b)
	if err != nil {
		return false, fmt.Errorf("store write: %w", err)
	}
	return applied, nil
}
