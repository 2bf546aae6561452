package linktest

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// errOtherSensor: a flow record of a batch names another sensor.
var errOtherSensor = errors.New("linktest: record of another sensor")

// stopTimeout bounds Collector.Stop's graceful drain.
const stopTimeout = 2 * time.Second

// SensorState is what the fake collector saw of one sensor id.
type SensorState struct {
	// Connected: the sensor has at least one open stream.
	Connected bool
	// Stats are the counters of the sensor's latest stats report.
	Stats map[string]uint64
	// Blocks counts the packet blocks of applied (not duplicate) batches.
	Blocks uint64
	// StoreErrors counts batches the store failed to write.
	StoreErrors uint64
}

// Collector is an in-process fake of the collector's ingest side, built
// only on the wire protocol: it serves tapir.v1.Ingest over mTLS, checks
// that each stream's Hello names the sensor of its client certificate
// (PermissionDenied otherwise), answers with the store's durable seq,
// writes every batch to its Store and acknowledges it once written; a
// store failure ends the stream with Unavailable and no ack, as the real
// collector does. Stop ends every stream with Unavailable. Its methods
// are safe for concurrent use.
type Collector struct {
	tapirv1.UnimplementedIngestServer
	store *Store
	grpc  *grpc.Server
	lis   net.Listener
	done  chan struct{}

	mu       sync.Mutex
	stopped  bool
	shutdown chan struct{}
	sensors  map[string]*SensorState
	streams  map[string]map[chan *tapirv1.CollectorMessage]struct{}
}

// StartCollector serves a fake collector with the PKI's server
// certificate on addr ("127.0.0.1:0" for any port), writing into store.
// It is stopped when the test ends.
func StartCollector(t testing.TB, pki *PKI, store *Store, addr string) *Collector {
	t.Helper()
	tc, err := tlsconfig.Server(pki.Server())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{
		store: store, lis: lis, done: make(chan struct{}), shutdown: make(chan struct{}),
		sensors: map[string]*SensorState{},
		streams: map[string]map[chan *tapirv1.CollectorMessage]struct{}{},
	}
	c.grpc = grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	tapirv1.RegisterIngestServer(c.grpc, c)
	go func() {
		defer close(c.done)
		_ = c.grpc.Serve(lis) // returns when stopped
	}()
	t.Cleanup(c.Stop)
	return c
}

// listen listens on addr, retrying for a while: the port of a
// just-stopped collector may linger briefly.
func listen(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var lis net.Listener
		if lis, err = net.Listen("tcp", addr); err == nil {
			return lis, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("listen %s: %w", addr, err)
}

// Addr returns the listening address.
func (c *Collector) Addr() net.Addr { return c.lis.Addr() }

// Stop ends every stream with Unavailable and stops serving, forcefully
// after a short drain. It is idempotent.
func (c *Collector) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	close(c.shutdown)
	c.mu.Unlock()
	stopped := make(chan struct{})
	go func() { c.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		c.grpc.Stop()
		<-stopped
	}
	<-c.done
}

// Sensor returns a copy of what the collector saw of sensor id.
func (c *Collector) Sensor(id string) (SensorState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sensors[id]
	if !ok {
		return SensorState{}, false
	}
	out := *s
	out.Stats = maps.Clone(s.Stats)
	out.Connected = len(c.streams[id]) > 0
	return out, true
}

// PushConfig queues cfg on every open stream of the sensor and returns
// how many streams it was queued on.
func (c *Collector) PushConfig(sensorID string, cfg *tapirv1.SensorConfig) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ch := range c.streams[sensorID] {
		select {
		case ch <- &tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_Config{Config: cfg}}:
			n++
		default:
		}
	}
	return n
}

// Stream implements tapirv1.IngestServer.
func (c *Collector) Stream(ss grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage]) error {
	certID, err := certSensorID(ss)
	if err != nil {
		return err
	}
	first, err := ss.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil || hello.SensorId == "" {
		return status.Error(codes.InvalidArgument, "first message must be a hello with a sensor id")
	}
	if hello.SensorId != certID {
		return status.Errorf(codes.PermissionDenied, "sensor id %q does not match certificate identity", hello.SensorId)
	}
	control := c.open(certID)
	defer c.close(certID, control)
	ack := &tapirv1.HelloAck{DurableSeq: c.store.durableSeq(certID, hello.Epoch), CollectorId: "linktest", Epoch: hello.Epoch}
	if err := ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_HelloAck{HelloAck: ack}}); err != nil {
		return err
	}
	return c.serve(ss, certID, hello.Epoch, control)
}

// certSensorID returns the sensor identity of the stream's client
// certificate.
func certSensorID(ss grpc.ServerStream) (string, error) {
	p, ok := peer.FromContext(ss.Context())
	if !ok {
		return "", status.Error(codes.PermissionDenied, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", status.Error(codes.PermissionDenied, "not a TLS stream")
	}
	id, err := tlsconfig.SensorID(&ti.State)
	if err != nil {
		return "", status.Error(codes.PermissionDenied, "certificate carries no sensor identity")
	}
	return id, nil
}

// open registers a stream of sensor id and returns its config channel.
func (c *Collector) open(id string) chan *tapirv1.CollectorMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sensors[id] == nil {
		c.sensors[id] = &SensorState{}
	}
	if c.streams[id] == nil {
		c.streams[id] = map[chan *tapirv1.CollectorMessage]struct{}{}
	}
	ch := make(chan *tapirv1.CollectorMessage, 4)
	c.streams[id][ch] = struct{}{}
	return ch
}

// close unregisters a stream opened by open.
func (c *Collector) close(id string, ch chan *tapirv1.CollectorMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.streams[id], ch)
}

// received is one message read from a stream.
type received struct {
	m   *tapirv1.SensorMessage
	err error
}

// serve handles a stream's batches and config pushes until the stream
// or the collector ends.
func (c *Collector) serve(ss grpc.BidiStreamingServer[tapirv1.SensorMessage, tapirv1.CollectorMessage], id string, epoch uint64, control <-chan *tapirv1.CollectorMessage) error {
	recv := make(chan received)
	go func() {
		for {
			m, err := ss.Recv()
			select {
			case recv <- received{m, err}:
			case <-ss.Context().Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var acked uint64
	for {
		select {
		case r := <-recv:
			if r.err != nil {
				return nil // the sensor closed or went away
			}
			seq, err := c.handle(id, epoch, r.m.GetBatch())
			if err != nil {
				return err
			}
			acked = max(acked, seq)
			if err := ss.Send(&tapirv1.CollectorMessage{Msg: &tapirv1.CollectorMessage_Ack{Ack: &tapirv1.Ack{Seq: acked}}}); err != nil {
				return err
			}
		case m := <-control:
			if err := ss.Send(m); err != nil {
				return err
			}
		case <-c.shutdown:
			return status.Error(codes.Unavailable, "collector shutting down")
		case <-ss.Context().Done():
			return nil
		}
	}
}

// handle writes one batch to the store and returns its seq.
func (c *Collector) handle(id string, epoch uint64, b *tapirv1.Batch) (uint64, error) {
	if b == nil || b.Seq == 0 || b.Epoch != epoch {
		return 0, status.Error(codes.InvalidArgument, "expected a batch of the stream's epoch with a seq")
	}
	sb, err := convert(id, b)
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "batch %d rejected: %v", b.Seq, err)
	}
	c.noteStats(id, b.Stats)
	applied, err := c.store.write(sb)
	if err != nil {
		c.note(id, func(s *SensorState) { s.StoreErrors++ })
		return 0, status.Error(codes.Unavailable, "store unavailable, retry later")
	}
	if applied {
		c.note(id, func(s *SensorState) { s.Blocks += uint64(len(sb.Blocks)) })
	}
	return b.Seq, nil
}

// convert turns a wire batch into its stored form (deep copies).
func convert(id string, b *tapirv1.Batch) (Batch, error) {
	sb := Batch{SensorID: id, Epoch: b.Epoch, Seq: b.Seq, Records: make([]flow.Record, len(b.Flows))}
	for i, f := range b.Flows {
		if err := tapirv1.ToRecord(f, &sb.Records[i]); err != nil {
			return Batch{}, fmt.Errorf("flow %d: %w", i, err)
		}
		switch sb.Records[i].SensorID {
		case "":
			sb.Records[i].SensorID = id
		case id:
		default:
			return Batch{}, fmt.Errorf("flow %d: %w", i, errOtherSensor)
		}
	}
	for _, bl := range b.Blocks {
		sb.Blocks = append(sb.Blocks, Block{Encoded: slices.Clone(bl.Data)})
	}
	return sb, nil
}

// noteStats keeps the counters of a stats report.
func (c *Collector) noteStats(id string, st *tapirv1.SensorStats) {
	if st == nil {
		return
	}
	c.note(id, func(s *SensorState) { s.Stats = maps.Clone(st.Counters) })
}

// note updates the state of sensor id under the lock.
func (c *Collector) note(id string, f func(*SensorState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.sensors[id])
}
