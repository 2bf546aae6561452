// Package ingest is the collector's side of the sensor link: a gRPC
// server for tapir.v1.Ingest.Stream. Each sensor stream starts with a
// Hello whose sensor id must equal the identity of the sensor's TLS
// client certificate (tapir://sensor/<id>, see internal/tlsconfig); then
// every Batch is validated, its blocks' headers parsed, written to the
// store, and acknowledged only once the store's Write returned — an Ack
// means durable.
//
// The server keeps no state of its own beyond counters: deduplication of
// resent batches is the store's (SensorID, Epoch, Seq) guarantee, so any
// number of collectors may share one store or sit behind a load
// balancer. The epoch (Hello.epoch, drawn when the sensor's spool is
// created) keeps a reinstalled sensor, or hosts sharing an id, from
// having their new batches taken for already stored ones.
//
// Admission: at most MaxStreams streams, MaxStreamsPerSensor per sensor
// id, and MaxInflightBytes of received batches not yet stored; a stream
// over that budget stops reading until bytes are freed, which HTTP/2
// flow control passes back to its sensor.
//
// Blocks whose every packet is already older than the packet retention
// (Dependencies.PacketRetention) are stored like any other, but counted
// per sensor in tapir_collector_ingest_expired_on_arrival_packets_total
// and logged as a warning (rate limited per sensor): the next retention
// run removes them, which whoever backfills an old capture must hear.
//
// Error handling per batch:
//   - malformed batch (bad record, bad block header, over limits,
//     an oversized string, an epoch other than the Hello's): the
//     stream ends with InvalidArgument and the trailer
//     "tapir-rejected-seq" naming the batch, which the sensor drops;
//   - store error: no ack; the stream ends with Unavailable so the sensor
//     backs off, reconnects and resends.
package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
)

// Sentinel errors.
var (
	// ErrBadBatch: a batch failed validation.
	ErrBadBatch = errors.New("ingest: malformed batch")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("ingest: already started")
	// ErrNoStore: Dependencies.Store is nil.
	ErrNoStore = errors.New("ingest: no store")
)

// TrailerRejectedSeq is the trailer key carrying the seq of a batch
// refused with InvalidArgument.
const TrailerRejectedSeq = "tapir-rejected-seq"

// Dependencies of the server.
type Dependencies struct {
	Store      storage.Writer        // required
	Registry   *registry.Registry    // optional: a private one is made
	Logger     *slog.Logger          // optional: discard
	Registerer prometheus.Registerer // optional: no metrics exported
	// Enrich, when set, is called on every flow record of a batch before
	// the batch is stored: the collector's enrichment chain. It must be
	// safe for concurrent use (one call per stream at a time).
	Enrich func(rec *flow.Record)
	// PacketRetention is the store's packet retention (retention.max_age;
	// 0: none). Blocks arriving with every packet already older are still
	// stored, but counted and logged: the next retention run removes them.
	PacketRetention time.Duration
	// Now is the clock (optional: time.Now).
	Now func() time.Time
}

// Server is the ingest gRPC server. New is inert; Start serves; Stop is
// idempotent. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	deps    Dependencies
	log     *slog.Logger
	rlog    *rateLog
	metrics *metrics
	lim     limits
	slots   chan struct{}
	budget  *budget

	mu       sync.Mutex
	grpc     *grpc.Server
	lis      net.Listener
	started  bool
	stopped  bool
	shutdown chan struct{} // closed by Stop: streams end
	done     chan struct{} // closed when Serve returns
	sessions map[string]map[*stream]struct{}
	// perSensor counts the open streams of each sensor id.
	perSensor map[string]int
}

// New validates the configuration and builds an inert server.
func New(cfg Config, deps Dependencies) (*Server, error) {
	if err := cfg.ValidateAll(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, ErrNoStore
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		r, err := registry.New(nil)
		if err != nil {
			return nil, err
		}
		deps.Registry = r
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return &Server{
		cfg:     cfg,
		deps:    deps,
		log:     deps.Logger,
		rlog:    newRateLog(deps.Logger, 10*time.Second),
		metrics: m,
		lim: limits{maxFlows: cfg.MaxFlowsPerBatch, maxBlocks: cfg.MaxBlocksPerBatch,
			maxString: cfg.MaxStringBytes, maxList: cfg.MaxListItems},
		slots:    make(chan struct{}, cfg.MaxStreams),
		budget:   newBudget(cfg.MaxInflightBytes),
		shutdown: make(chan struct{}),
		done:     make(chan struct{}),
		sessions: map[string]map[*stream]struct{}{},

		perSensor: map[string]int{},
	}, nil
}

// Start serves on lis, or on a new listener on cfg.Listen if lis is nil.
func (s *Server) Start(lis net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.ConnectionTimeout(s.cfg.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.KeepaliveTime, Timeout: s.cfg.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.KeepaliveMinTime, PermitWithoutStream: true}),
	}
	if !s.cfg.TLS.Insecure {
		tc, err := tlsconfig.Server(s.cfg.TLS)
		if err != nil {
			return fmt.Errorf("ingest tls: %w", err)
		}
		opts = append(opts, grpc.Creds(countingCreds{TransportCredentials: credentials.NewTLS(tc), s: s}))
	}
	if lis == nil {
		var err error
		lis, err = net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("ingest listen: %w", err)
		}
	}
	s.grpc = grpc.NewServer(opts...)
	tapirv1.RegisterIngestServer(s.grpc, &service{s: s})
	s.lis = lis
	s.started = true
	go func() {
		defer close(s.done)
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("ingest server stopped", "err", err)
		}
	}()
	s.log.Info("ingest listening", "addr", lis.Addr().String(), "tls", !s.cfg.TLS.Insecure)
	return nil
}

// Addr returns the listening address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Registry returns the sensor registry the server feeds.
func (s *Server) Registry() *registry.Registry { return s.deps.Registry }

// Stop ends every stream (each finishes the batch it is writing; a
// batch not acked is resent by its sensor elsewhere or later), then
// stops the server, forcefully after StopTimeout. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	close(s.shutdown)
	g, started := s.grpc, s.started
	s.mu.Unlock()
	if !started {
		return
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.cfg.StopTimeout):
		s.log.Warn("ingest graceful stop timed out, closing connections")
		g.Stop()
		<-stopped
	}
	<-s.done
}

// PushConfig sends cfg to every open stream of the sensor and returns
// how many streams it was queued on (0 if the sensor is not connected).
func (s *Server) PushConfig(sensorID string, cfg *tapirv1.SensorConfig) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for st := range s.sessions[sensorID] {
		select {
		case st.control <- &tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_Config{Config: cfg}}:
			n++
		default: // the stream is stuck; its sensor gets the next push
		}
	}
	return n
}

// claimSensor counts a stream against its sensor id's limit
// (MaxStreamsPerSensor), refusing it with ResourceExhausted when the id
// already has that many open; unclaimSensor gives the claim back.
func (s *Server) claimSensor(id, remote string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.perSensor[id]; n >= s.cfg.MaxStreamsPerSensor {
		return s.refuse("refused_sensor_limit", "sensor-limit:"+id,
			status.Errorf(codes.ResourceExhausted, "sensor %q already has %d streams open (max_streams_per_sensor)", id, n),
			"sensor stream refused: too many streams for this sensor id", "sensor", id, "remote", remote, "max", s.cfg.MaxStreamsPerSensor)
	}
	s.perSensor[id]++
	return nil
}

func (s *Server) unclaimSensor(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perSensor[id]--; s.perSensor[id] <= 0 {
		delete(s.perSensor, id)
	}
}

// addSession registers an open stream of sensor id. Streams of one id
// with different epochs (a reinstalled sensor whose old stream has not
// timed out, or several hosts sharing an id) are kept apart: each epoch
// is its own sequence space in the store. They are counted and logged,
// since hosts sharing an id mix their counters in the registry.
func (s *Server) addSession(id string, st *stream, remote string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.sessions[id]
	if m == nil {
		m = map[*stream]struct{}{}
		s.sessions[id] = m
	}
	for o := range m {
		if o.epoch != st.epoch {
			s.metrics.sharedID.Inc()
			s.rlog.warn("shared-id:"+id, "streams with different epochs under one sensor id (reinstalled sensor, or hosts sharing an id): kept apart",
				"sensor", id, "epoch", st.epoch, "other_epoch", o.epoch, "remote", remote)
			break
		}
	}
	m[st] = struct{}{}
}

func (s *Server) removeSession(id string, st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions[id], st)
	if len(s.sessions[id]) == 0 {
		delete(s.sessions, id)
	}
}
