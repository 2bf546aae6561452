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
	control chan *tapirv1.CollectorMessage
}

type recvResult struct {
	m   *tapirv1.SensorMessage
	err error
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

func (v *service) Stream(ss grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage]) error {
	s := v.s
	ctx := ss.Context()
	remote := "unknown"
	var certID string
	p, _ := peer.FromContext(ctx)
	if p != nil {
		remote = p.Addr.String()
	}
	if !s.cfg.TLS.Insecure {
		var err error
		if p != nil {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				certID, err = tlsconfig.SensorID(&ti.State)
			} else {
				err = tlsconfig.ErrNoIdentity
			}
		} else {
			err = tlsconfig.ErrNoIdentity
		}
		if err != nil {
			s.metrics.streams.WithLabelValues("refused_identity").Inc()
			s.rlog.warn("identity:"+remote, "sensor stream refused: no sensor identity in certificate", "remote", remote, "err", err)
			return status.Error(codes.PermissionDenied, "certificate carries no sensor identity")
		}
	}

	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.metrics.streams.WithLabelValues("refused_limit").Inc()
		s.rlog.warn("limit", "sensor stream refused: too many streams", "remote", remote, "max", s.cfg.MaxStreams)
		return status.Error(codes.ResourceExhausted, "too many sensor streams")
	}

	// One goroutine receives; it ends when the handler returns (the
	// stream's context is cancelled and Recv fails).
	recv := make(chan recvResult, 2)
	go func() {
		for {
			m, err := ss.Recv()
			select {
			case recv <- recvResult{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	// Hello.
	timer := time.NewTimer(s.cfg.HelloTimeout)
	var hello *tapirv1.Hello
	select {
	case r := <-recv:
		timer.Stop()
		if r.err != nil {
			return r.err
		}
		hello = r.m.GetHello()
	case <-timer.C:
		s.metrics.streams.WithLabelValues("refused_hello_timeout").Inc()
		s.rlog.warn("hello-timeout:"+remote, "sensor stream refused: no hello in time", "remote", remote)
		return status.Error(codes.DeadlineExceeded, "no hello in time")
	case <-s.shutdown:
		return status.Error(codes.Unavailable, "collector shutting down")
	}
	if hello == nil || !validSensorID(hello.SensorId) {
		s.metrics.streams.WithLabelValues("refused_hello").Inc()
		s.rlog.warn("hello:"+remote, "sensor stream refused: first message is not a valid hello", "remote", remote)
		return status.Error(codes.InvalidArgument, "first message must be a hello with a sensor id")
	}
	id := hello.SensorId
	if !s.cfg.TLS.Insecure && id != certID {
		s.metrics.streams.WithLabelValues("refused_identity").Inc()
		s.rlog.warn("mismatch:"+remote, "sensor stream refused: hello sensor id differs from certificate",
			"remote", remote, "hello_id", id, "cert_id", certID)
		return status.Errorf(codes.PermissionDenied, "sensor id %q does not match certificate identity", id)
	}
	durable, err := s.deps.Store.DurableSeq(ctx, id)
	if err != nil {
		s.metrics.streams.WithLabelValues("refused_store").Inc()
		s.rlog.warn("store", "sensor stream refused: store durable seq", "sensor", id, "err", err)
		return status.Error(codes.Unavailable, "store unavailable")
	}
	info := registry.Info{ID: id, Hostname: hello.Hostname, Version: hello.Version, Capabilities: hello.Capabilities}
	for _, ifc := range hello.Interfaces {
		info.Interfaces = append(info.Interfaces, registry.Interface{Name: ifc.GetName(), LinkType: ifc.GetLinkType(), Snaplen: ifc.GetSnaplen()})
	}
	sess := s.deps.Registry.Connect(info, remote, durable)
	defer sess.Close()
	st := &stream{control: make(chan *tapirv1.CollectorMessage, 4)}
	s.addSession(id, st)
	defer s.removeSession(id, st)
	s.metrics.streams.WithLabelValues("accepted").Inc()
	s.metrics.activeStream.Inc()
	defer s.metrics.activeStream.Dec()
	s.log.Info("sensor connected", "sensor", id, "remote", remote, "durable_seq", durable, "version", hello.Version)
	defer s.log.Info("sensor stream closed", "sensor", id, "remote", remote)

	if err := ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_HelloAck{HelloAck: &tapirv1.HelloAck{
		DurableSeq: durable, CollectorId: s.cfg.CollectorID,
	}}}); err != nil {
		return err
	}

	var sb storage.Batch
	var acked uint64
	for {
		var r recvResult
		select {
		case r = <-recv:
		case m := <-st.control:
			if err := ss.Send(m); err != nil {
				return err
			}
			s.metrics.configPushes.Inc()
			continue
		case <-s.shutdown:
			return status.Error(codes.Unavailable, "collector shutting down")
		}
		if r.err != nil {
			return nil // the sensor closed or the connection broke
		}
		b := r.m.GetBatch()
		if b == nil {
			s.metrics.batches.WithLabelValues("rejected").Inc()
			sess.Rejected(errors.New("unexpected message after hello"))
			return status.Error(codes.InvalidArgument, "expected a batch")
		}
		start := time.Now()
		nbytes, err := convertBatch(id, b, s.lim, &sb)
		if err != nil {
			s.metrics.batches.WithLabelValues("rejected").Inc()
			sess.Rejected(err)
			s.rlog.warn("rejected:"+id, "batch rejected", "sensor", id, "seq", b.Seq, "err", err)
			ss.SetTrailer(metadata.Pairs(TrailerRejectedSeq, strconv.FormatUint(b.Seq, 10)))
			return status.Errorf(codes.InvalidArgument, "batch %d rejected: %v", b.Seq, err)
		}
		if st := b.Stats; st != nil {
			sess.Stats(time.Unix(0, st.UnixNano), st.Counters)
		}
		if s.deps.Enrich != nil {
			for i := range sb.Records {
				s.deps.Enrich(&sb.Records[i])
			}
		}
		applied, err := s.write(ctx, &sb)
		if errors.Is(err, storage.ErrInvalidBatch) {
			// The store can never hold this batch: reject it (the sensor
			// drops and counts it) rather than have the sensor resend it
			// forever and block everything behind it.
			s.metrics.batches.WithLabelValues("rejected").Inc()
			sess.Rejected(err)
			s.rlog.warn("rejected:"+id, "batch rejected by the store", "sensor", id, "seq", b.Seq, "err", err)
			ss.SetTrailer(metadata.Pairs(TrailerRejectedSeq, strconv.FormatUint(b.Seq, 10)))
			return status.Errorf(codes.InvalidArgument, "batch %d rejected: %v", b.Seq, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // the sensor went away mid-write
			}
			s.metrics.batches.WithLabelValues("store_error").Inc()
			sess.StoreError(err)
			s.rlog.warn("store-write:"+id, "store write failed; sensor will retry", "sensor", id, "seq", b.Seq, "err", err)
			return status.Error(codes.Unavailable, "store unavailable, retry later")
		}
		acked = max(acked, b.Seq)
		if applied {
			s.metrics.batches.WithLabelValues("stored").Inc()
			s.metrics.records.Add(float64(len(sb.Records)))
			s.metrics.blocks.Add(float64(len(sb.Blocks)))
			s.metrics.blockBytes.Add(float64(nbytes))
		} else {
			s.metrics.batches.WithLabelValues("duplicate").Inc()
		}
		sess.Batch(len(sb.Records), len(sb.Blocks), nbytes, applied, acked)
		clear(sb.Blocks) // drop references to the wire buffers
		if err := ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_Ack{Ack: &tapirv1.Ack{Seq: acked}}}); err != nil {
			return err
		}
		s.metrics.ackLatency.Observe(time.Since(start).Seconds())
	}
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
